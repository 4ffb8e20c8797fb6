/** Requests signed the way each official SDK signs them verify: raw-body hashing, both path encodings. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalHeaders, canonicalQuery, canonicalRequest, canonicalUri, formatSdkDate, sha256Hex, signature, stringToSign,
} from '../../../src/identity/sdk-hmac-signer.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
before(async () => {
  stack = await startStack();
  s = await seed(stack.app);
});
after(() => stack.stop());

interface SignSpec {
  method?: string;
  path: string;
  query?: string;
  body: string;
  headers?: Record<string, string>;
  signed?: string[];
  decodeFirst?: boolean;
  contentSha?: string;
}

/** Signs independently of the production signRequest, choosing every knob an SDK could turn. */
function send(spec: SignSpec) {
  const host = new URL(stack.apiUrl).host;
  const headers: Record<string, string> = { host, 'x-sdk-date': formatSdkDate(Date.now()), 'content-type': 'application/json', ...spec.headers };
  if (spec.contentSha) headers['x-sdk-content-sha256'] = spec.contentSha;
  const signed = spec.signed ?? Object.keys(headers).sort();
  const canon = canonicalRequest({
    method: spec.method ?? 'POST',
    canonicalUri: canonicalUri(spec.path, spec.decodeFirst ?? false)!,
    canonicalQuery: canonicalQuery(spec.query ?? '')!,
    canonicalHeaders: canonicalHeaders(signed, (n) => headers[n]),
    signedHeaders: signed,
    payloadHash: spec.contentSha ?? sha256Hex(spec.body),
  });
  const sig = signature(s.sk, stringToSign(headers['x-sdk-date']!, canon));
  headers['authorization'] = `SDK-HMAC-SHA256 Access=${s.ak}, SignedHeaders=${signed.join(';')}, Signature=${sig}`;
  return http(spec.method ?? 'POST', stack.apiUrl + spec.path + (spec.query ? `?${spec.query}` : ''), headers, spec.body);
}

const path = (): string => `/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;

test('Node style: compact JSON, all headers signed', async () => {
  const r = await send({ path: path(), body: '{"remote_console":{"type":"novnc","protocol":"vnc"}}', headers: { 'x-project-id': s.projectId } });
  assert.equal(r.status, 200, r.text);
});

test('Python style: spaces after : and , and user-agent signed', async () => {
  const r = await send({ path: path(), body: '{"remote_console": {"type": "novnc", "protocol": "vnc"}}', headers: { 'user-agent': 'huaweicloud-usdk-python/3.0', 'x-project-id': s.projectId } });
  assert.equal(r.status, 200, r.text);
});

test('Go style: trailing newline after the JSON', async () => {
  const r = await send({ path: path(), body: '{"remote_console":{"type":"novnc","protocol":"vnc"}}\n' });
  assert.equal(r.status, 200, r.text);
});

test('only host and x-sdk-date signed is enough', async () => {
  const r = await send({ path: path(), body: '{"remote_console":{"type":"novnc","protocol":"vnc"}}', signed: ['host', 'x-sdk-date'] });
  assert.equal(r.status, 200, r.text);
});

test('SignedHeaders without x-sdk-date or host is refused', async () => {
  const r = await send({ path: path(), body: '{"remote_console":{"type":"novnc","protocol":"vnc"}}', signed: ['content-type', 'host'] });
  assert.equal(r.status, 401);
  assert.match(r.json.error_msg, /x-sdk-date/);
});

test('a signed X-Sdk-Content-Sha256 holding the body\'s hash is the payload hash (see signed-body.test.ts for the refusals)', async () => {
  const body = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';
  assert.equal((await send({ path: path(), body, contentSha: sha256Hex(body) })).status, 200);
});

test('both path encodings verify (auth passes, then 404 for the odd id)', async () => {
  const odd = `/v1/${s.projectId}/cloudservers/a%20b%7Bc%7D/remote_console`;
  const body = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';
  for (const decodeFirst of [false, true]) {
    const r = await send({ path: odd, body, decodeFirst });
    assert.equal(r.status, 404, `decodeFirst=${decodeFirst}: ${r.text}`);
    assert.equal(r.json.error.code, 'Ecs.0114');
  }
});

test('query strings are canonicalised (sorted, encoded) for GET calls', async () => {
  const r = await send({ method: 'GET', path: `/v1/${s.projectId}/cloudservers/detail`, query: 'offset=1&limit=10&name=web-01', body: '' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.count, 1);
  assert.equal(r.json.servers[0].name, 'web-01');
});
