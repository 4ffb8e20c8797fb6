/**
 * Handshake timeout; the Origin allow-list cannot be changed by requests (Nova bug 2158919);
 * subprotocol offers we cannot accept are refused before the token is spent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { upgradeTarget } from '../../../src/proxy/proxy-server.js';
import { closeOf, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let stack: Stack;
let s: Seed;
before(async () => {
  vnc = new DemoVncServer({ name: 'hs', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  stack = await startStack({ options: { proxyHandshakeTimeoutSeconds: '1' } });
  s = await seed(stack.app, { host: '127.0.0.1', port });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

test('a browser that never completes the RFB handshake is closed after the handshake timeout', async () => {
  const { token } = await stack.app.services.consoleTokens.issue(s.active);
  const r = await openWs(wsUrlOf(`${stack.proxyUrl}/vnc_auto.html?token=${token}`));
  assert.ok(r.ok);
  const t0 = Date.now();
  const closed = await closeOf(r.ws);
  assert.equal(closed.code, CloseCode.BadClientData);
  assert.ok(Date.now() - t0 >= 800 && Date.now() - t0 < 4000, `${Date.now() - t0} ms`);
  assert.equal(stack.app.proxy!.sessionCount, 0);
});

test('requests with other Host and Origin headers never change the allow-list', async () => {
  const before = [...stack.app.proxy!.origins].sort();
  for (const h of ['evil.example', 'attacker:1', '127.0.0.1:1']) {
    await http('GET', `${stack.proxyUrl}/vnc_auto.html`, { host: h, origin: `https://${h}` });
    const { token } = await stack.app.services.consoleTokens.issue(s.active);
    const r = await openWs(wsUrlOf(`${stack.proxyUrl}/vnc_auto.html?token=${token}`), { origin: `http://${h}`, headers: { host: h } });
    assert.ok(!r.ok && r.status === 403, h);
  }
  assert.deepEqual([...stack.app.proxy!.origins].sort(), before);
});

/** Opens a WebSocket offering `protocols`; resolves with the refusal's status and text, or the accepted protocol. */
function offer(url: string, protocols: string[]): Promise<{ status: number; body: string } | { protocol: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { origin: new URL(url.replace(/^ws/, 'http')).origin });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => {
      resolve({ protocol: ws.protocol });
      ws.close();
    });
    ws.once('error', (e) => (e.message.startsWith('Unexpected server response') ? undefined : reject(e)));
  });
}

test('an upgrade offering only subprotocols we do not speak (base64) is refused 400 before the token is spent', async () => {
  const { token } = await stack.app.services.consoleTokens.issue(s.active);
  const url = wsUrlOf(`${stack.proxyUrl}/vnc_auto.html?token=${token}`);
  for (const protocols of [['base64'], ['base64', 'chat']]) {
    const r = await offer(url, protocols);
    assert.ok('status' in r, `accepted ${JSON.stringify(r)} for ${protocols.join(', ')}`);
    assert.equal(r.status, 400);
    assert.match(r.body, /offer "binary"/);
  }
  assert.equal((await stack.app.services.consoleTokens.peek(token)).state, 'valid', 'the refusal spent the token');
  // The same link then works, offering what noVNC offers (and a client offering binary among others gets it).
  assert.deepEqual(await offer(url, ['base64', 'binary']), { protocol: 'binary' });
});

test('the upgrade target: a plain console URL read without URL gives what URL and URLSearchParams give, every other form goes through them', () => {
  const token = '3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b';
  const viaUrl = (raw: string): { path: string; token: string } => {
    const u = new URL(raw, 'http://proxy.invalid');
    return { path: u.pathname, token: u.searchParams.get('token') ?? '' };
  };
  for (const raw of [
    `/websockify?token=${token}`,
    `/websockify?token=${token.toUpperCase()}`,
    `/websockify?token=${token}&token=other`,
    `/websockify?x=1&token=${token}`,
    `/websockify?token=${token}#frag`,
    `/./websockify?token=${token}`,
    `/a/../websockify?token=${token}`,
    `/websockify/?token=${token}`,
    `/WEBSOCKIFY?token=${token}`,
    `/websockify?token=%33f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b`,
    `/websockify?token=${token}+`,
    `/websockify?token=${token.slice(0, 35)}`,
    `/websockify?token=${token}0`,
    '/websockify?token=------------------------------------',
    '/websockify',
    '/serial-websocket?token=abc',
    '/',
  ]) {
    assert.deepEqual(upgradeTarget(raw), viaUrl(raw), raw);
  }
  assert.equal(upgradeTarget('http://[::1'), null);
});
