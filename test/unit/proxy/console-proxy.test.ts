/** The console proxy end to end on loopback: API -> URL -> WebSocket -> security proxy -> demo VNC server. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server as NetServer } from 'node:net';
import { DemoVncServer } from '../../../src/demo/index.js';
import { SecurityType } from '../../../src/rfb/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { consoleFailure, openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

const VNC_PASSWORD = 'demo-pw';

async function demo(name: string, password?: string): Promise<{ vnc: DemoVncServer; port: number }> {
  const vnc = new DemoVncServer({ name, ...(password ? { password } : {}), width: 320, height: 200 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  return { vnc, port };
}

describe('console proxy', () => {
  let stack: Stack;
  let s: Seed;
  let backend: { vnc: DemoVncServer; port: number };
  const url = async (serverId = s.active.id): Promise<string> =>
    (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), serverId)).remote_console.url;

  before(async () => {
    backend = await demo('backend-name-never-shown', VNC_PASSWORD);
    stack = await startStack();
    s = await seed(stack.app, { host: '127.0.0.1', port: backend.port, auth: 'vnc-password', password: VNC_PASSWORD });
  });
  after(async () => {
    await stack.stop();
    await backend.vnc.close();
  });

  test('the browser is offered None only, gets the inventory name and framebuffer updates', async () => {
    const { client, ws } = await openConsole(await url());
    assert.deepEqual(client.offeredSecurityTypes, [SecurityType.None]);
    assert.equal(client.name, 'web-01');
    assert.equal(client.width, 320);
    await client.waitUntil(() => client.updateCount > 0);
    assert.ok(client.countPixelsNot(client.getPixel(0, 0)) > 0, 'the screen shows something');
    ws.close();
  });

  test('50 simultaneous connects with one token: exactly one succeeds, the rest get 401', async () => {
    const u = await url();
    const results = await Promise.all(Array.from({ length: 50 }, () => openWs(wsUrlOf(u))));
    const ok = results.filter((r) => r.ok);
    assert.equal(ok.length, 1);
    for (const r of results) if (!r.ok) assert.equal(r.status, 401);
    for (const r of ok) if (r.ok) r.ws.close();
  });

  test('reuse after a successful connect is 401 "already used"', async () => {
    const u = await url();
    const first = await openConsole(u);
    const again = await openWs(wsUrlOf(u));
    assert.equal(again.ok, false);
    assert.ok(!again.ok && again.status === 401 && /already used/.test(again.body));
    first.ws.close();
  });

  test('unknown and malformed tokens are 401', async () => {
    for (const t of ['00000000-0000-4000-8000-000000000000', 'x', '']) {
      const r = await openWs(wsUrlOf(`${stack.proxyUrl}/vnc_auto.html`, t));
      assert.ok(!r.ok && r.status === 401, t);
    }
  });

  test('wrong Origin is 403, and the token is not consumed', async () => {
    const u = await url();
    const bad = await openWs(wsUrlOf(u), { origin: 'https://evil.example' });
    assert.ok(!bad.ok && bad.status === 403);
    const good = await openConsole(u);
    good.ws.close();
  });

  test('a missing Origin is allowed by default', async () => {
    const c = await openConsole(await url(), { origin: null });
    c.ws.close();
  });

  test('a server stopped after issue: token revoked (409, saying so); status changed behind our back: 409', async () => {
    const u = await url();
    await stack.app.services.inventory.setStatus(s.active.id, 'SHUTOFF');
    const r = await openWs(wsUrlOf(u));
    assert.ok(!r.ok && r.status === 409 && /was stopped/.test(r.body), JSON.stringify(r));
    await stack.app.services.inventory.setStatus(s.active.id, 'ACTIVE');
    const u2 = await url();
    // Another process changed the status without revoking (a race): the proxy re-checks at connect.
    await stack.app.services.stores.servers.updateServer(s.active.id, { status: 'REBOOT' }, Date.now());
    const r2 = await openWs(wsUrlOf(u2));
    assert.ok(!r2.ok && r2.status === 409, JSON.stringify(r2));
    await stack.app.services.stores.servers.updateServer(s.active.id, { status: 'ACTIVE' }, Date.now());
    // What that process's change on the feed does to this node's server cache.
    stack.app.services.inventory.invalidate({ kind: 'record-changed', serverId: null, credential: `server:${s.active.id}` });
  });

  test('the console target moved behind our back: 409 (CVE-2013-0335)', async () => {
    const u = await url();
    await stack.app.services.stores.servers.updateServer(s.active.id, { console: (await stack.app.services.inventory.getServer(s.active.id)).console }, Date.now());
    const r = await openWs(wsUrlOf(u));
    assert.ok(!r.ok && r.status === 409);
    // What that process's change on the feed does to this node's server cache.
    stack.app.services.inventory.invalidate({ kind: 'record-changed', serverId: null, credential: `server:${s.active.id}` });
  });

  test('setting SHUTOFF closes live sessions within 1 s with a reason; other servers carry on', async () => {
    const other = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'web-02', console: { host: '127.0.0.1', port: backend.port, auth: 'vnc-password', password: VNC_PASSWORD } });
    const a = await openConsole(await url());
    const b = await openConsole(await url(other.id));
    const t0 = Date.now();
    await stack.app.services.inventory.setStatus(s.active.id, 'SHUTOFF');
    const closed = await a.closed;
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(closed.code, CloseCode.Revoked);
    assert.match(closed.reason, /stopped/);
    const before = b.client.updateCount;
    b.client.requestUpdate(false);
    await b.client.waitUntil(() => b.client.updateCount > before);
    b.ws.close();
    await stack.app.services.inventory.setStatus(s.active.id, 'ACTIVE');
  });

  test('stop, start and a new console within one poll: the new session survives the stop when the feed delivers it', async () => {
    const inv = stack.app.services.inventory;
    await inv.setStatus(s.active.id, 'SHUTOFF');
    await inv.setStatus(s.active.id, 'ACTIVE');
    await new Promise((r) => setTimeout(r, 5));
    const c = await openConsole(await url());
    // Longer than the feed's poll interval: the stop and start come back through the feed now.
    await new Promise((r) => setTimeout(r, 700));
    const n = c.client.updateCount;
    c.client.requestUpdate(false);
    await c.client.waitUntil(() => c.client.updateCount > n);
    assert.ok(c.client.isOpen, 'still open');
    c.ws.close();
  });

  test('a change made by another process (second store handle) reaches the proxy through the change feed within 1 s', async () => {
    const c = await openConsole(await url());
    const { createServices } = await import('../../../src/app.js');
    const other = await createServices(stack.config, { logger: (await import('../../../src/log.js')).silentLogger() });
    const t0 = Date.now();
    await other.inventory.setStatus(s.active.id, 'SHUTOFF');
    const closed = await c.closed;
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    assert.equal(closed.code, CloseCode.Revoked);
    await other.inventory.setStatus(s.active.id, 'ACTIVE');
    await other.close();
  });

  test('pre-check: valid shows the name without consuming; used and unknown are told', async () => {
    const u = await url();
    const token = new URL(u).searchParams.get('token')!;
    const info = (t: string) => http('POST', `${stack.proxyUrl}/api/console/info`, { 'content-type': 'application/json' }, JSON.stringify({ token: t }));
    const r = await info(token);
    assert.equal(r.json.state, 'valid');
    assert.equal(r.json.server.name, 'web-01');
    const c = await openConsole(u);
    assert.equal((await info(token)).json.state, 'used');
    assert.equal((await info('00000000-0000-4000-8000-000000000000')).json.state, 'unknown');
    assert.equal((await http('POST', `${stack.proxyUrl}/api/console/info`, {}, 'nope')).status, 400);
    c.ws.close();
  });

  test('a browser sending junk after the handshake is closed 4400; the backend and others are fine', async () => {
    const a = await openConsole(await url());
    const b = await openConsole(await url());
    a.client.sendRaw(Buffer.from([0x42, 0, 0, 0, 0, 0]));
    const closed = await a.closed;
    assert.equal(closed.code, CloseCode.BadClientData);
    const n = b.client.updateCount;
    b.client.requestUpdate(false);
    await b.client.waitUntil(() => b.client.updateCount > n);
    b.ws.close();
  });

  test('operations endpoints', async () => {
    assert.equal((await http('GET', `${stack.proxyUrl}/healthz`)).status, 200);
    assert.equal((await http('GET', `${stack.proxyUrl}/readyz`)).status, 200);
    const m = await http('GET', `${stack.proxyUrl}/metrics`);
    assert.match(m.text, /ecs_console_sessions_total\{outcome="connected",reason="ok"\} \d+/);
    assert.match(m.text, /ecs_console_handshake_seconds_bucket/);
    assert.match(m.text, /ecs_console_bytes_total\{direction="to_client"\}/);
    const api = await http('GET', `${stack.apiUrl}/metrics`);
    assert.match(api.text, /ecs_console_api_requests_total\{route="\/v1\/:project_id\/cloudservers\/:server_id\/remote_console",method="POST",status="200"\}/);
    assert.equal((await http('GET', `${stack.proxyUrl}/nope`)).status, 404);
  });
});

describe('console proxy: backend failures', () => {
  let stack: Stack;
  let s: Seed;
  let good: { vnc: DemoVncServer; port: number };
  let deadPort: number;
  before(async () => {
    good = await demo('good', 'rightpw');
    const probe: NetServer = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    deadPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    stack = await startStack();
    s = await seed(stack.app, { host: '127.0.0.1', port: good.port, auth: 'vnc-password', password: 'rightpw' });
  });
  after(async () => {
    await stack.stop();
    await good.vnc.close();
  });

  const issue = async (serverId: string): Promise<string> => (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), serverId)).remote_console.url;

  test('backend down: RFB failure reason, then close 4100; a parallel session is unaffected', async () => {
    const parallel = await openConsole(await issue(s.active.id));
    const down = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'down', console: { host: '127.0.0.1', port: deadPort, auth: 'none' } });
    const f = await consoleFailure(await issue(down.id));
    assert.match(f.rfbError, /could not be reached/);
    assert.equal(f.code, CloseCode.BackendUnreachable);
    assert.match(f.reason, /could not be reached/);
    const n = parallel.client.updateCount;
    parallel.client.requestUpdate(false);
    await parallel.client.waitUntil(() => parallel.client.updateCount > n);
    parallel.ws.close();
  });

  test('wrong backend password: close 4101 with a readable reason, never the password', async () => {
    const wrong = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'wrongpw', console: { host: '127.0.0.1', port: good.port, auth: 'vnc-password', password: 'badpw' } });
    const f = await consoleFailure(await issue(wrong.id));
    assert.match(f.rfbError, /Authentication to the server's VNC console failed/);
    assert.equal(f.code, CloseCode.BackendAuthFailed);
    assert.doesNotMatch(f.rfbError + f.reason, /badpw|rightpw/);
  });

  test('backend unreachable or refusing us: logged at warn with the server id and the backend\'s words, which never reach the browser', async () => {
    // A VNC server that refuses every connection with its own reason (RFC 6143 7.1.2: no security types, a reason).
    const words = 'hypervisor says: console password expired';
    const refusing = createServer((sock) => {
      sock.on('error', () => sock.destroy());
      sock.write('RFB 003.008\n');
      sock.once('data', () => {
        const reason = Buffer.from(words);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(reason.length);
        sock.end(Buffer.concat([Buffer.from([0]), len, reason]));
      });
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    try {
      const refused = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'refusing', console: { host: '127.0.0.1', port: (refusing.address() as { port: number }).port, auth: 'none' } });
      const down = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'down-2', console: { host: '127.0.0.1', port: deadPort, auth: 'none' } });
      stack.logs.lines.length = 0;
      const f = await consoleFailure(await issue(refused.id));
      assert.equal(f.code, CloseCode.BackendAuthFailed);
      assert.ok(!(f.rfbError + f.reason).includes('hypervisor'), 'the backend\'s words reached the browser');
      const g = await consoleFailure(await issue(down.id));
      assert.equal(g.code, CloseCode.BackendUnreachable);
      const warned = stack.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['level'] === 'warn' && String(l['msg']).startsWith('console backend failed'));
      const auth = warned.find((l) => l['server'] === refused.id);
      assert.ok(auth, `no warning for ${refused.id}: ${JSON.stringify(warned)}`);
      assert.equal(auth['msg'], 'console backend failed: could not log in to the server\'s VNC console');
      assert.equal(auth['code'], 'BACKEND_AUTH_FAILED');
      assert.match(String(auth['backendReason']), new RegExp(words));
      const unreachable = warned.find((l) => l['server'] === down.id);
      assert.ok(unreachable, `no warning for ${down.id}`);
      assert.equal(unreachable['msg'], 'console backend failed: the server\'s VNC console could not be reached');
      assert.match(String(unreachable['backendReason']), /ECONNREFUSED/);
    } finally {
      refusing.close();
    }
  });

  test('backend closing mid-session: close 4205', async () => {
    const vnc = await demo('short-lived');
    const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'short', console: { host: '127.0.0.1', port: vnc.port, auth: 'none' } });
    const c = await openConsole(await issue(srv.id));
    await c.client.waitUntil(() => c.client.updateCount > 0);
    await vnc.vnc.close();
    const closed = await c.closed;
    assert.equal(closed.code, CloseCode.BackendClosed);
  });

  test('a browser flooding while the backend is silent is closed 4400 at once, not buffered', async () => {
    const silent = createServer((sock) => sock.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'silent', console: { host: '127.0.0.1', port: (silent.address() as { port: number }).port, auth: 'none' } });
      const r = await openWs(wsUrlOf(await issue(srv.id)));
      assert.ok(r.ok);
      const closed = new Promise<number>((res) => r.ws.once('close', (code) => res(code)));
      const chunk = Buffer.alloc(256 * 1024, 0x41);
      for (let i = 0; i < 8 && r.ws.readyState === r.ws.OPEN; i++) r.ws.send(chunk);
      const t0 = Date.now();
      assert.equal(await closed, CloseCode.BadClientData);
      assert.ok(Date.now() - t0 < 2000, 'closed on the flood, not at the handshake timeout');
    } finally {
      silent.close();
    }
  });

  test('a backend hanging up right after ServerInit, while the browser is mid-handshake, ends the session at once', async () => {
    const { serverHandshake, ByteReader, encodeServerInit, RGB888_PIXEL_FORMAT } = await import('../../../src/rfb/index.js');
    const rude = createServer((sock) => {
      const reader = new ByteReader();
      sock.on('data', (d: Buffer) => reader.push(d));
      sock.on('error', () => undefined);
      void serverHandshake(reader, (b) => sock.write(b), { securityTypes: [1] }).then(() => {
        sock.end(encodeServerInit({ width: 8, height: 8, pixelFormat: RGB888_PIXEL_FORMAT, name: 'x' }));
      }, () => sock.destroy());
    });
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    try {
      const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'rude', console: { host: '127.0.0.1', port: (rude.address() as { port: number }).port, auth: 'none' } });
      const r = await openWs(wsUrlOf(await issue(srv.id)));
      assert.ok(r.ok);
      const closed = new Promise<number>((res) => r.ws.once('close', (code) => res(code)));
      // The browser sends its version and then stalls in the security step.
      r.ws.send(Buffer.from('RFB 003.008\n'));
      const t0 = Date.now();
      assert.equal(await closed, CloseCode.BackendClosed);
      assert.ok(Date.now() - t0 < 3000, 'not left until the handshake timeout');
    } finally {
      rude.close();
    }
  });

  test('upgrades the WebSocket layer would refuse are refused before the token is spent', async () => {
    const u = await issue(s.active.id);
    const token = new URL(u).searchParams.get('token')!;
    const port = Number(new URL(stack.proxyUrl).port);
    const raw = (text: string): Promise<string> => new Promise((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let out = '';
      sock.on('data', (d) => (out += d.toString()));
      sock.on('close', () => resolve(out));
      sock.on('error', () => resolve(out));
      sock.write(text);
    });
    const base = `Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`;
    assert.match(await raw(`GET /websockify?token=${token} HTTP/1.1\r\n${base}\r\n`), /^HTTP\/1\.1 400/, 'no version');
    assert.match(await raw(`POST /websockify?token=${token} HTTP/1.1\r\n${base}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n`), /^HTTP\/1\.1 405/, 'POST');
    assert.match(await raw(`GET http://[x/websockify HTTP/1.1\r\n${base}Sec-WebSocket-Version: 13\r\n\r\n`), /^HTTP\/1\.1 (400|404)/, 'unparsable target');
    assert.equal((await stack.app.services.consoleTokens.peek(token)).state, 'valid', 'the token was not spent');
    assert.doesNotMatch(stack.logs.text, /"level":"error".*upgrade failed/);
    const c = await openConsole(u);
    c.ws.close();
  });

  test('the audit trail has issued, connected, rejected and closed, with token references only', async () => {
    const all = await stack.app.services.stores.audit.listAudit({ limit: 1000 });
    const kinds = new Set(all.map((e) => e.kind));
    for (const k of ['issued', 'connected', 'rejected', 'closed'] as const) assert.ok(kinds.has(k), k);
    const closed = all.find((e) => e.kind === 'closed')!;
    assert.equal(typeof closed.detail['bytesToClient'], 'number');
    assert.equal(typeof closed.detail['durationMs'], 'number');
    assert.match(closed.tokenRef!, /^[0-9a-f]{8}$/);
    assert.ok(all.some((e) => e.kind === 'rejected' && e.detail['reason'] === 'backend-auth-failed'));
  });
});
