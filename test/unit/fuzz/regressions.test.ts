/**
 * Minimal reproductions of the bugs the fuzzers found, one test each (docs/reliability.md, "Bugs
 * found"). All are fixed; each test holds its fix.
 */
import type { StaticTarget } from '../../../src/inventory/types.js';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeServerInit, encodeProtocolVersion } from '../../../src/rfb/handshake-messages.js';
import { RGB888_PIXEL_FORMAT } from '../../../src/rfb/pixel-format.js';
import { ByteReader } from '../../../src/rfb/byte-reader.js';
import { clientHandshake } from '../../../src/rfb/client-handshake.js';
import { http } from '../../helpers/signed-fetch.js';
import { DEMO_PASSWORD, errorLogLines, openSession, startApiEnv } from '../../fuzz/fuzz-env.js';
import { startUpgradeEnv } from '../../fuzz/proxy-upgrade-target.js';
import { openConsole } from '../../helpers/console-client.js';
import { liveBytes, useEnv } from '../../fuzz/runner.js';


/** A correct upgrade request for `target`, minus the headers named in `without`. */
function upgradeRequest(target: string, host: string, without: string[] = []): string {
  const headers = [['Host', host], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']]
    .filter(([k]) => !without.includes(k!));
  return `GET ${target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** Sends raw bytes to a port and returns everything the server wrote before closing (or 2 s). */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('close', () => resolve(out));
    sock.on('error', () => resolve(out));
    sock.end(Buffer.from(request, 'latin1'));
    setTimeout(() => sock.destroy(), 2000).unref();
  });
}

describe('API', () => {
  const api = useEnv(startApiEnv);

  test('an unknown method gets a Huawei gateway body and X-Request-Id', async () => {
    const out = await rawHttp(Number(new URL(api().stack.apiUrl).port), 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    // Today: fastify's default {"error":"Bad Request","message":"Client Error","statusCode":400}.
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.match(out, /\r\nx-request-id: [0-9a-f]{32}\r\n/i);
    assert.match(out, /"error_code":"APIGW\.0101"/);
  });

  test('a HEAD request the parser refuses gets no body (the connection stays parseable)', async () => {
    const out = await rawHttp(Number(new URL(api().stack.apiUrl).port), `HEAD /v1/\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.ok(out.endsWith('\r\n\r\n'), `a body follows the HEAD answer: ${JSON.stringify(out.slice(out.indexOf('\r\n\r\n')))}`);
  });

  test('an Expect header other than 100-continue gets a Huawei body', async () => {
    const r = await http('GET', `${api().stack.apiUrl}/healthz`, { expect: 'x' });
    // Today: Node's own 417 with an empty body.
    assert.ok(r.json && (r.json.error_code || r.json.error), `${r.status} ${JSON.stringify(r.text)}`);
    assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{32}$/);
  });

  test('an invalid %-escape in the path: 400 APIGW.0101 with X-Request-Id', async () => {
    const r = await http('GET', `${api().stack.apiUrl}/v1/%ZZ/cloudservers/x`);
    assert.equal(r.status, 400);
    assert.equal(r.json.error_code, 'APIGW.0101');
    // Today the body has request_id, the header is missing.
    assert.equal(r.headers['x-request-id'], r.json.request_id);
  });
});

describe('console proxy', () => {
  // One session per server: a slot that is never given back blocks its server at once.
  const proxy = useEnv(startUpgradeEnv);

  test('a browser flooding a session whose backend has not answered yet is cut off, not buffered', async () => {
    proxy().scripted.set([], false);
    const r = await openSession(proxy(), proxy().scriptedServer);
    const before = liveBytes();
    r.ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
    const mib = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < 32 && r.ws.readyState === r.ws.OPEN; i++) await new Promise((res) => r.ws.send(mib, res));
    const held = liveBytes() - before;
    proxy().scripted.dropAll();
    const { code } = await r.closed;
    // A browser sends 14 bytes before ServerInit: megabytes are an attack, refused at once.
    assert.ok(held < 4 * 1024 * 1024, `the proxy holds ${(held / 2 ** 20).toFixed(1)} MiB from the browser`);
    assert.equal(code, 4400);
  });

  test('a backend that closes right after ServerInit ends the session with 4205', async () => {
    const serverInit = encodeServerInit({ width: 64, height: 48, pixelFormat: RGB888_PIXEL_FORMAT, name: 'x' });
    // RFB 3.3, security type None (u32 1), ServerInit, then the backend hangs up.
    proxy().scripted.set([Buffer.concat([encodeProtocolVersion('3.3'), Buffer.from([0, 0, 0, 1]), serverInit])], true);
    const r = await openSession(proxy(), proxy().scriptedServer);
    const reader = new ByteReader();
    r.transport.onData((b) => reader.push(b));
    r.transport.onClose(() => reader.end());
    await clientHandshake(reader, (b) => r.transport.write(b), { signal: AbortSignal.timeout(5000) });
    const seen = await Promise.race([r.closed, sleep(2000).then(() => null)]);
    if (!seen) r.ws.close();
    // Today the session stays open (until the idle timeout), relaying to a closed socket.
    assert.ok(seen, 'the session stayed open after its backend closed');
    assert.equal(seen.code, 4205);
  });

  test('an upgrade target URL cannot parse is a 4xx, not a 503 with an error log', async () => {
    const url = new URL(proxy().stack.proxyUrl);
    const out = await rawHttp(Number(url.port), upgradeRequest('//[', url.host));
    // Today: 503 "temporarily unavailable" and an error-level "upgrade failed" line with a stack.
    assert.match(out, /^HTTP\/1\.1 4\d\d /, out.split('\r\n')[0]);
    assert.deepEqual(errorLogLines(proxy().stack), []);
  });

  test('an upgrade the WebSocket layer refuses gives its slot back and leaves the token unused', async () => {
    const { inventory, consoleTokens } = proxy().stack.app.services;
    const demo = (await inventory.getServer(proxy().seed.active.id)).console as StaticTarget;
    const server = await inventory.addServer({ projectId: proxy().seed.projectId, name: 'bug-6', console: { host: demo.host, port: demo.port, auth: 'vnc-password', password: DEMO_PASSWORD } });
    const { token } = await consoleTokens.issue(server);
    const url = new URL(proxy().stack.proxyUrl);
    const out = await rawHttp(Number(url.port), upgradeRequest(`/websockify?token=${token}`, url.host, ['Sec-WebSocket-Version']));
    assert.match(out, /^HTTP\/1\.1 400 /);
    // Today: the slot taken for the refused upgrade is never released (429 until a restart)...
    const again = await consoleTokens.issue(server);
    const con = await openConsole(`${proxy().stack.proxyUrl}/vnc_auto.html?token=${again.token}`);
    con.ws.close();
    // ...and the token is used up by a request that was never going to be upgraded.
    assert.equal((await consoleTokens.peek(token)).state, 'valid');
  });
});
