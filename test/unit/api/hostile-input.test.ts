/** Malformed and hostile requests: every answer is a clear 4xx in Huawei's shape, never a 500 or a stack. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { http, signedHttp, type Reply } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
before(async () => {
  stack = await startStack({ options: { apiRateLimitPerAddress: '0', apiRateLimitPerCredential: '0' } });
  s = await seed(stack.app);
});
after(() => stack.stop());

function assertClean(r: Reply, label: string): void {
  assert.ok(r.status >= 400 && r.status < 500, `${label}: status ${r.status} ${r.text}`);
  assert.doesNotMatch(r.text, /at [\w.<>]+ \(|node_modules|\/src\/|Error:/, `${label}: leaks internals: ${r.text}`);
  assert.ok(r.json && (r.json.error || r.json.error_code), `${label}: not a Huawei body: ${r.text}`);
}

const url = (): string => `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;

test('hostile bodies (signed, so they reach validation)', async () => {
  const deep = '['.repeat(3000) + ']'.repeat(3000);
  const deepObj = '{"remote_console":' + '{"a":'.repeat(2000) + '1' + '}'.repeat(2000) + '}';
  const bodies = [
    deep, deepObj, '{"remote_console":{"type":"novnc","protocol":"vnc"', 'null', 'true', '123', '"\\u0000"',
    '{"__proto__":{"type":"novnc"}}', '{"remote_console":{"__proto__":{"type":"novnc","protocol":"vnc"}}}',
    '{"remote_console":{"type":"novnc","protocol":"vnc","type":7}}', '\u00ff\u00fe garbage', '{"remote_console":{"type":"' + 'n'.repeat(3000) + '","protocol":"vnc"}}',
  ];
  for (const b of bodies) assertClean(await signedHttp('POST', url(), b, { ak: s.ak, sk: s.sk, projectId: s.projectId }), b.slice(0, 40));
  // Invalid UTF-8 bytes.
  const bad = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
  assertClean(await http('POST', url(), { 'content-type': 'application/json', 'x-auth-token': 'nope' }, bad), 'bad utf8');
});

test('huge body is 413 without reading it all', async () => {
  const r = await http('POST', url(), { 'content-type': 'application/json' }, Buffer.alloc(2 * 1024 * 1024, 0x20));
  assert.equal(r.status, 413);
  assert.equal(r.json.error_code, 'APIGW.0201');
});

test('odd Authorization headers', async () => {
  const auths = [
    'SDK-HMAC-SHA256', 'SDK-HMAC-SHA256 ', 'Basic dXNlcjpwYXNz', 'Bearer x', 'SDK-HMAC-SHA256 Access=A',
    `SDK-HMAC-SHA256 Access=${s.ak}, SignedHeaders=host;x-sdk-date, Signature=zz`,
    `SDK-HMAC-SHA256 Access=${s.ak}, SignedHeaders=x-sdk-date;host, Signature=${'0'.repeat(64)}`,
    `SDK-HMAC-SHA256 Access=${s.ak}, SignedHeaders=host;x-missing;x-sdk-date, Signature=${'0'.repeat(64)}`,
    `SDK-HMAC-SHA256 Access=${'A'.repeat(3000)}, SignedHeaders=host;x-sdk-date, Signature=${'0'.repeat(64)}`,
    'SDK-HMAC-SHA256 ' + ',,,,='.repeat(500), '\u00e9\u00e9',
  ];
  for (const a of auths) {
    const r = await http('POST', url(), { 'content-type': 'application/json', authorization: a, 'x-sdk-date': '20260101T000000Z' }, '{}');
    assertClean(r, a.slice(0, 40));
    assert.equal(r.status, 401, a.slice(0, 40));
  }
  for (const d of ['', 'yesterday', '20261301T000000Z', '2026-01-01T00:00:00Z']) {
    const r = await http('POST', url(), { authorization: `SDK-HMAC-SHA256 Access=${s.ak}, SignedHeaders=host;x-sdk-date, Signature=${'0'.repeat(64)}`, 'x-sdk-date': d }, '');
    assert.equal(r.status, 401, d);
  }
});

test('odd ids and paths', async () => {
  const paths = [
    `/v1/${s.projectId}/cloudservers/${'a'.repeat(300)}/remote_console`,
    `/v1/${s.projectId}/cloudservers/%00/remote_console`,
    `/v1/${s.projectId}/cloudservers/..%2F..%2Fetc/remote_console`,
    `/v1/%ZZ/cloudservers/x/remote_console`,
    `/v1//cloudservers//remote_console`,
    `/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console/extra`,
    `//evil.example/v1/x`,
  ];
  for (const p of paths) {
    const r = await signedHttp('POST', stack.apiUrl + p, '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assertClean(r, p);
  }
});

test('wrong content types and methods', async () => {
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', '']) {
    const r = await signedHttp('POST', url(), '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: s.ak, sk: s.sk, projectId: s.projectId, extraHeaders: ct ? { 'content-type': ct } : {} });
    assert.ok(r.status === 200 || (r.status === 400 && r.json.error.code === 'Ecs.0005'), `${ct}: ${r.status} ${r.text}`);
  }
  for (const m of ['PATCH', 'OPTIONS', 'TRACE']) assertClean(await http(m, url()), m);
});

test('a malformed request line gets a 400, and the server keeps serving', async () => {
  const raw = await new Promise<string>((resolve) => {
    const sock = connect(Number(new URL(stack.apiUrl).port), '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString()));
    sock.on('close', () => resolve(out));
    sock.on('error', () => resolve(out));
    sock.end('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  assert.match(raw, /^HTTP\/1\.1 400/);
  assert.match(raw, /\r\nX-Request-Id: [0-9a-f]{32}\r\n/i);
  assert.match(raw, /\{"error_code":"APIGW\.0101","error_msg":"The request is malformed\.","request_id":"[0-9a-f]{32}"\}$/);
  const r = await http('GET', `${stack.apiUrl}/healthz`);
  assert.equal(r.status, 200);
});

test('ListServersDetails with bad parameters is 400 Ecs.0005', async () => {
  for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'offset=-1', 'status=RUNNING', 'limit=99999999999']) {
    const r = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/detail?${q}`, '', { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assertClean(r, q);
    assert.equal(r.json.error.code, 'Ecs.0005', q);
  }
});

test('refusals before routing keep Huawei\'s shape: unknown method, Expect, a bad escape', async () => {
  const raw = (text: string): Promise<string> => new Promise((resolve) => {
    const sock = connect(Number(new URL(stack.apiUrl).port), '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString()));
    sock.on('close', () => resolve(out));
    sock.on('error', () => resolve(out));
    sock.end(text);
  });
  for (const [req, status] of [
    ['FOO /v1/x HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['POST /v1/x HTTP/1.1\r\nHost: x\r\nExpect: x\r\nContent-Length: 0\r\n\r\n', 417],
    ['GET /v1/%ZZ/cloudservers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400],
  ] as const) {
    const out = await raw(req);
    assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), req);
    assert.match(out, /\r\nx-request-id: [0-9a-f]{32}\r\n/i, req);
    assert.match(out, /"error_code":"APIGW\.0101"/, req);
  }
  // HEAD: the same answer without a body.
  const head = await new Promise<string>((resolve) => {
    const sock = connect(Number(new URL(stack.apiUrl).port), '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('close', () => resolve(out));
    sock.end(Buffer.concat([Buffer.from('HEAD /v1/'), Buffer.from([0xe9]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]));
  });
  assert.match(head, /^HTTP\/1\.1 400 /);
  assert.ok(head.endsWith('\r\n\r\n'), 'no body after the headers of a HEAD answer');
});
