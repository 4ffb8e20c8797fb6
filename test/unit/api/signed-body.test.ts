/**
 * The signature binds the body: a request captured from the official SDK and replayed with another
 * body (with or without an X-Sdk-Content-Sha256 header claiming the signed body's hash) is refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BatchStartServersOption, BatchStartServersRequest, BatchStartServersRequestBody, ServerId,
} from '@huaweicloud/huaweicloud-sdk-ecs';
import { sha256Hex } from '../../../src/identity/sdk-hmac-signer.js';
import type { Server } from '../../../src/inventory/types.js';
import { sdkClient } from '../../helpers/huawei-sdk.js';
import { http, signedHttp, type Reply } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
let second: Server;
before(async () => {
  stack = await startStack();
  s = await seed(stack.app);
  second = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'web-02', console: { host: '127.0.0.1', port: 5900, auth: 'none', password: null } });
});
after(() => stack.stop());

interface Captured {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What the official SDK sends for one call, captured by a loopback server that answers 200. */
async function captureSdk(call: (endpoint: string) => Promise<unknown>): Promise<Captured> {
  let captured: Captured | undefined;
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      captured = { method: req.method!, url: req.url!, headers: plain(req.headers), body: Buffer.concat(chunks).toString('utf8') };
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"job_id":"00000000-0000-4000-8000-000000000000"}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    await call(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`);
  } finally {
    srv.close();
  }
  assert.ok(captured, 'the SDK sent nothing');
  return captured;
}

function plain(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  // Hop-by-hop and length headers are the transport's; everything else is replayed as sent.
  for (const [k, v] of Object.entries(h)) if (typeof v === 'string' && !['content-length', 'connection'].includes(k)) out[k] = v;
  return out;
}

/** Sends a captured request to our API (its signed Host header included), with another body and extra headers. */
function replay(c: Captured, body: string, extra: Record<string, string> = {}): Promise<Reply> {
  return http(c.method, stack.apiUrl + c.url, { ...c.headers, ...extra }, body);
}

const startBody = (ids: string[]) => new BatchStartServersRequest().withBody(new BatchStartServersRequestBody().withOsStart(new BatchStartServersOption().withServers(ids.map((i) => new ServerId(i)))));
const status = async (id: string): Promise<string> => (await stack.app.services.inventory.getServer(id)).status;

test('an os-start captured from the official SDK, replayed as os-stop of two servers with an unsigned X-Sdk-Content-Sha256: 401, nothing stops', async () => {
  const c = await captureSdk((endpoint) => sdkClient(endpoint, s.ak, s.sk, s.projectId).batchStartServers(startBody([s.active.id])));
  assert.equal(c.url, `/v1/${s.projectId}/cloudservers/action`);
  assert.ok(!/x-sdk-content-sha256/.test(c.headers['authorization']!), 'the SDK does not sign X-Sdk-Content-Sha256 for JSON');
  const stop = JSON.stringify({ 'os-stop': { type: 'HARD', servers: [{ id: s.active.id }, { id: second.id }] } });

  const swapped = await replay(c, stop, { 'X-Sdk-Content-Sha256': sha256Hex(c.body) });
  assert.equal(swapped.status, 401, swapped.text);
  assert.equal(swapped.json.error_code, 'APIGW.0301');
  // The same swap without the header: the body's own hash does not match the signature either.
  assert.equal((await replay(c, stop)).status, 401);
  assert.equal(await status(s.active.id), 'ACTIVE');
  assert.equal(await status(second.id), 'ACTIVE');

  // The capture itself is genuine: replayed as it was, it is accepted.
  const original = await replay(c, c.body);
  assert.equal(original.status, 200, original.text);
});

test('a signed X-Sdk-Content-Sha256 must be the hash of the body received', async () => {
  const url = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;
  const body = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';
  const other = '{"remote_console":{"type":"novnc","protocol":"vnc"} }';
  const sign = (b: string, sha: string): Promise<Reply> => signedHttp('POST', url, b, { ak: s.ak, sk: s.sk, projectId: s.projectId, extraHeaders: { 'x-sdk-content-sha256': sha } });
  assert.equal((await sign(body, sha256Hex(body))).status, 200);
  assert.equal((await sign(body, sha256Hex(body).toUpperCase())).status, 200, 'hex digits in either case');
  const wrong = await sign(body, sha256Hex(other));
  assert.equal(wrong.status, 401);
  assert.match(wrong.json.error_msg, /X-Sdk-Content-Sha256 is not the sha256 of the body received/);
});

test('UNSIGNED-PAYLOAD: refused with a body (a body the signature does not cover could be anything), accepted without one', async () => {
  const rc = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;
  const waived = await signedHttp('POST', rc, '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: s.ak, sk: s.sk, projectId: s.projectId, extraHeaders: { 'x-sdk-content-sha256': 'UNSIGNED-PAYLOAD' } });
  assert.equal(waived.status, 401);
  assert.match(waived.json.error_msg, /UNSIGNED-PAYLOAD is accepted only without a body/);
  const show = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}`, '', { ak: s.ak, sk: s.sk, projectId: s.projectId, extraHeaders: { 'x-sdk-content-sha256': 'UNSIGNED-PAYLOAD' } });
  assert.equal(show.status, 200, show.text);
});

test('an unsigned X-Sdk-Content-Sha256 is ignored: the body received is hashed', async () => {
  const url = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;
  const c = await captureSdk((endpoint) => signedHttp('POST', endpoint + new URL(url).pathname, '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: s.ak, sk: s.sk, projectId: s.projectId }));
  const r = await replay(c, c.body, { 'X-Sdk-Content-Sha256': 'UNSIGNED-PAYLOAD' });
  assert.equal(r.status, 200, r.text);
});
