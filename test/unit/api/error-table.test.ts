/** Every row of the contract's error table: status, code and body shape. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/clock.js';
import { formatSdkDate } from '../../../src/identity/sdk-hmac-signer.js';
import { http, signedHttp, type Reply } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';

before(async () => {
  stack = await startStack({ clock, options: { apiBodyLimitBytes: '4096', apiRateLimitPerCredential: '1000' } });
  s = await seed(stack.app);
});
after(() => stack.stop());

const rcUrl = (project: string, server: string): string => `${stack.apiUrl}/v1/${project}/cloudservers/${server}/remote_console`;
const signed = (body: string, o: { ak?: string; sk?: string; project?: string; server?: string; at?: number; headers?: Record<string, string>; from?: string } = {}): Promise<Reply> =>
  signedHttp('POST', rcUrl(o.project ?? s.projectId, o.server ?? s.active.id), body, {
    ak: o.ak ?? s.ak, sk: o.sk ?? s.sk, projectId: o.project ?? s.projectId, at: o.at ?? clock.now(), ...(o.headers ? { extraHeaders: o.headers } : {}),
    ...(o.from ? { localAddress: o.from } : {}),
  });

function assertCommon(r: Reply): void {
  assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{32}$/);
  assert.match(String(r.headers['content-type']), /^application\/json/);
}
function assertGateway(r: Reply, status: number, code: string, msg?: RegExp): void {
  assertCommon(r);
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.json).sort(), ['error_code', 'error_msg', 'request_id']);
  assert.equal(r.json.error_code, code);
  assert.equal(r.json.request_id, r.headers['x-request-id']);
  if (msg) assert.match(r.json.error_msg, msg);
}
function assertService(r: Reply, status: number, code: string, msg?: RegExp): void {
  assertCommon(r);
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message']);
  assert.equal(r.json.error.code, code);
  if (msg) assert.match(r.json.error.message, msg);
}

test('200 with a signed request', async () => {
  const r = await signed(BODY);
  assert.equal(r.status, 200, r.text);
  assertCommon(r);
  assert.match(r.json.remote_console.url, /\/vnc_auto\.html\?token=[0-9a-f-]{36}&lang=EN&tLength=70$/);
});

test('X-Language: zh-cn gives lang=ZH', async () => {
  const r = await signed(BODY, { headers: { 'X-Language': 'zh-cn' } });
  assert.equal(r.status, 200);
  assert.match(r.json.remote_console.url, /&lang=ZH&/);
});

test('401 APIGW.0301: no credential', async () => {
  assertGateway(await http('POST', rcUrl(s.projectId, s.active.id), { 'content-type': 'application/json' }, BODY), 401, 'APIGW.0301', /Incorrect IAM authentication information/);
});

test('401 APIGW.0301: bad signature', async () => {
  assertGateway(await signed(BODY, { sk: 'y'.repeat(40) }), 401, 'APIGW.0301', /verify aksk signature fail/);
});

test('401 APIGW.0301: body changed after signing', async () => {
  const good = await import('../../../src/identity/sdk-hmac-signer.js');
  const headers = good.signRequest({ method: 'POST', url: new URL(rcUrl(s.projectId, s.active.id)), headers: { 'content-type': 'application/json' }, body: BODY }, s.ak, s.sk, clock.now());
  assertGateway(await http('POST', rcUrl(s.projectId, s.active.id), headers, BODY.replace('vnc"}', 'vnc" }')), 401, 'APIGW.0301');
});

test('401 APIGW.0301: skew beyond 15 minutes either way; within is fine', async () => {
  assertGateway(await signed(BODY, { at: clock.now() - 16 * 60_000 }), 401, 'APIGW.0301', /15 minutes/);
  assertGateway(await signed(BODY, { at: clock.now() + 16 * 60_000 }), 401, 'APIGW.0301', /15 minutes/);
  assert.equal((await signed(BODY, { at: clock.now() - 14 * 60_000 })).status, 200);
});

test('401 APIGW.0301: unknown AK, unknown or expired IAM token', async () => {
  assertGateway(await signed(BODY, { ak: 'ZZZZZZZZZZZZZZZZZZZZ' }), 401, 'APIGW.0301', /verify aksk signature fail/);
  assertGateway(await http('POST', rcUrl(s.projectId, s.active.id), { 'x-auth-token': 'ECTnot-a-token', 'content-type': 'application/json' }, BODY), 401, 'APIGW.0301');
});

test('401 APIGW.0301: 5 consecutive signature failures lock the (AK, source address) pair for 5 minutes; other addresses keep working', async () => {
  const k = await stack.app.services.identity.createAccessKey({ userId: (await stack.app.services.identity.findUser(s.domain, s.user)).id, projectId: s.projectId });
  const from = (address: string, sk: string): Promise<Reply> => signed(BODY, { ak: k.ak, sk, from: address });
  for (let i = 0; i < 4; i++) assertGateway(await from('127.0.0.2', 'wrong'), 401, 'APIGW.0301', /verify aksk signature fail$/);
  // A good signature resets that address's count.
  assert.equal((await from('127.0.0.2', k.sk)).status, 200);
  for (let i = 0; i < 4; i++) await from('127.0.0.2', 'wrong');
  assertGateway(await from('127.0.0.2', 'wrong'), 401, 'APIGW.0301', /signature fail; the access key is now locked for requests from this address for 300 s$/);
  // Now even the right SK is refused from that address, until 5 minutes pass...
  assertGateway(await from('127.0.0.2', k.sk), 401, 'APIGW.0301', /locked for requests from this address for 300 s/);
  // ...while the owner, from another address, is not locked out.
  assert.equal((await from('127.0.0.1', k.sk)).status, 200);
  clock.advance(299_000);
  assertGateway(await from('127.0.0.2', k.sk), 401, 'APIGW.0301', /locked for requests from this address for 1 s/);
  clock.advance(2_000);
  assert.equal((await from('127.0.0.2', k.sk)).status, 200);
});

test('403 Pdp.0001: credential without ecs:cloudServers:vnc', async () => {
  assertService(await signed(BODY, { ak: s.limitedAk, sk: s.limitedSk }), 403, 'Pdp.0001', /^Policy doesn't allow ecs:cloudServers:vnc to be performed\.$/);
});

test('400 Common.0018: project in URL differs from the credential\'s', async () => {
  assertService(await signed(BODY, { ak: s.otherAk, sk: s.otherSk, project: s.projectId }), 400, 'Common.0018', /project ID in the URL is different/);
  // X-Project-Id header differing from the URL is refused the same way.
  assertService(await signed(BODY, { headers: { 'X-Project-Id': s.otherProjectId } }), 400, 'Common.0018');
});

test('400 Common.0002: empty body', async () => {
  assertService(await signed(''), 400, 'Common.0002');
});

test('400 Ecs.0005: not JSON, missing or wrong-typed fields, wrong type/protocol; the message names the field', async () => {
  const cases: Array<[string, RegExp]> = [
    ['{', /not valid JSON/],
    ['[]', /JSON object/],
    ['"x"', /JSON object/],
    ['{}', /remote_console is required/],
    ['{"remote_console":null}', /remote_console is required/],
    ['{"remote_console":"novnc"}', /remote_console must be an object/],
    ['{"remote_console":{"protocol":"vnc"}}', /remote_console\.type is required/],
    ['{"remote_console":{"type":"novnc"}}', /remote_console\.protocol is required/],
    ['{"remote_console":{"type":1,"protocol":"vnc"}}', /remote_console\.type must be a string/],
    ['{"remote_console":{"type":"novnc","protocol":["vnc"]}}', /remote_console\.protocol must be a string/],
    ['{"remote_console":{"type":"spice","protocol":"vnc"}}', /remote_console\.type must be novnc/],
    ['{"remote_console":{"type":"novnc","protocol":"spice"}}', /remote_console\.protocol must be vnc/],
  ];
  for (const [body, msg] of cases) assertService(await signed(body), 400, 'Ecs.0005', msg);
});

test('400 Ecs.0005: wrong content type', async () => {
  assertService(await signed(BODY, { headers: { 'content-type': 'text/plain' } }), 400, 'Ecs.0005', /Content-Type/);
});

test('404 Ecs.0114: unknown server, another project\'s server, and a malformed id all look the same', async () => {
  for (const id of ['00000000-0000-4000-8000-000000000000', s.foreign.id, 'not-a-uuid', '%3Cscript%3E']) {
    assertService(await signed(BODY, { server: id }), 404, 'Ecs.0114', /could not be found/);
  }
});

test('400 Ecs.0100: server not ACTIVE', async () => {
  assertService(await signed(BODY, { server: s.shutoff.id }), 400, 'Ecs.0100', /does not meet requirements/);
});

test('413 APIGW.0201: body too large', async () => {
  assertGateway(await signed(JSON.stringify({ remote_console: { type: 'novnc', protocol: 'vnc', pad: 'x'.repeat(5000) } })), 413, 'APIGW.0201', /Request entity too large/);
});

test('404 APIGW.0101: unknown path or method', async () => {
  assertGateway(await http('GET', `${stack.apiUrl}/nope`), 404, 'APIGW.0101');
  assertGateway(await http('PUT', rcUrl(s.projectId, s.active.id), {}, BODY), 404, 'APIGW.0101');
  assertGateway(await http('DELETE', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}`), 404, 'APIGW.0101');
});

test('429 APIGW.0308: per-credential rate limit', async () => {
  const limited = await startStack({ clock, options: { apiRateLimitPerCredential: '3' } });
  try {
    const t = await seed(limited.app);
    const url = `${limited.apiUrl}/v1/${t.projectId}/cloudservers/${t.active.id}/remote_console`;
    for (let i = 0; i < 3; i++) assert.equal((await signedHttp('POST', url, BODY, { ak: t.ak, sk: t.sk, projectId: t.projectId, at: clock.now() })).status, 200);
    const r = await signedHttp('POST', url, BODY, { ak: t.ak, sk: t.sk, projectId: t.projectId, at: clock.now() });
    assertGateway(r, 429, 'APIGW.0308', /throttling threshold/);
    assert.ok(Number(r.headers['retry-after']) >= 1);
    // Another credential is not affected.
    assert.equal((await signedHttp('POST', url, BODY, { ak: t.limitedAk, sk: t.limitedSk, projectId: t.projectId, at: clock.now() })).status, 403);
  } finally {
    await limited.stop();
  }
});

test('429 APIGW.0308: per-address rate limit', async () => {
  const limited = await startStack({ clock, options: { apiRateLimitPerAddress: '2' } });
  try {
    await http('GET', `${limited.apiUrl}/nope`);
    await http('GET', `${limited.apiUrl}/nope`);
    assertGateway(await http('GET', `${limited.apiUrl}/nope`), 429, 'APIGW.0308');
  } finally {
    await limited.stop();
  }
});

test('500 Common.0001: store down gives a generic message and no details', async () => {
  const broken = await startStack({ clock });
  try {
    const t = await seed(broken.app);
    const url = `${broken.apiUrl}/v1/${t.projectId}/cloudservers/${t.active.id}/remote_console`;
    await broken.app.services.stores.close();
    const r = await signedHttp('POST', url, BODY, { ak: t.ak, sk: t.sk, projectId: t.projectId, at: clock.now() });
    assertService(r, 500, 'Common.0001');
    assert.doesNotMatch(r.text, /sqlite|database|stack|at \w+ \(/i);
    assert.match(broken.logs.text, /"level":"error"/);
  } finally {
    await broken.stop();
  }
});

test('X-Sdk-Date header format: ours matches the SDK', () => {
  assert.equal(formatSdkDate(Date.UTC(2026, 5, 1, 12, 0, 0)), '20260601T120000Z');
});
