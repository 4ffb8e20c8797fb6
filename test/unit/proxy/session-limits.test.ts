/** Caps, throttling, idle timeout and maximum duration, with short settings. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/clock.js';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let port = 0;
before(async () => {
  vnc = new DemoVncServer({ name: 'limits', width: 160, height: 100 });
  port = (await vnc.listen(0, '127.0.0.1')).port;
});
after(() => vnc.close());

async function consoleUrl(stack: Stack, serverId: string): Promise<string> {
  const server = await stack.app.services.inventory.getServer(serverId);
  const { token } = await stack.app.services.consoleTokens.issue(server);
  return `${stack.proxyUrl}/vnc_auto.html?token=${token}`;
}

describe('caps', () => {
  let stack: Stack;
  let s: Seed;
  before(async () => {
    stack = await startStack({ options: { proxyMaxSessionsPerServer: '2', proxyMaxSessionsPerProject: '3', proxyMaxSessions: '4' } });
    s = await seed(stack.app, { host: '127.0.0.1', port });
  });
  after(() => stack.stop());

  test('per server, per project and global caps answer 429; a freed slot is reusable', async () => {
    const inv = stack.app.services.inventory;
    const b = await inv.addServer({ projectId: s.projectId, name: 'b', console: { host: '127.0.0.1', port, auth: 'none' } });
    const c = await inv.addServer({ projectId: s.otherProjectId, name: 'c', console: { host: '127.0.0.1', port, auth: 'none' } });
    const a1 = await openConsole(await consoleUrl(stack, s.active.id));
    const a2 = await openConsole(await consoleUrl(stack, s.active.id));
    const a3u = await consoleUrl(stack, s.active.id);
    const a3 = await openWs(wsUrlOf(a3u));
    assert.ok(!a3.ok && a3.status === 429 && /server has reached/.test(a3.body), JSON.stringify(a3));
    const b1 = await openConsole(await consoleUrl(stack, b.id));
    const b2 = await openWs(wsUrlOf(await consoleUrl(stack, b.id)));
    assert.ok(!b2.ok && b2.status === 429 && /project has reached/.test(b2.body));
    const c1 = await openConsole(await consoleUrl(stack, c.id));
    const c2 = await openWs(wsUrlOf(await consoleUrl(stack, c.id)));
    assert.ok(!c2.ok && c2.status === 429 && /session limit/.test(c2.body));
    // The refused token was not consumed: once a slot frees, it works.
    a1.ws.close();
    await a1.closed;
    await new Promise((r) => setTimeout(r, 50));
    const again = await openConsole(a3u);
    for (const x of [a2, b1, c1, again]) x.ws.close();
  });
});

describe('one link opened many times at once', () => {
  let stack: Stack;
  let s: Seed;
  before(async () => {
    stack = await startStack({ options: { proxyMaxSessionsPerServer: '2' } });
    s = await seed(stack.app, { host: '127.0.0.1', port });
  });
  after(() => stack.stop());

  test('one session opens; every other attempt is told the link was used, none that the server is full (they wait for the first instead of holding its slots)', async () => {
    const u = await consoleUrl(stack, s.active.id);
    const results = await Promise.all(Array.from({ length: 12 }, () => openWs(wsUrlOf(u))));
    const answers = results.map((r) => (r.ok ? 101 : `${r.status} ${/already used/.test(r.body) ? 'used' : r.body}`));
    assert.deepEqual(answers.filter((a) => a !== 101), Array(11).fill('401 used'), JSON.stringify(answers));
    for (const r of results) if (r.ok) r.ws.close();
  });
});

describe('failed-token throttle', () => {
  let stack: Stack;
  let s: Seed;
  before(async () => {
    stack = await startStack({ options: { proxyFailedTokenLimitPerMinute: '5', trustProxy: 'true' } });
    s = await seed(stack.app, { host: '127.0.0.1', port });
  });
  after(() => stack.stop());

  test('an address that keeps failing gets 429, even with a good token; another address is served', async () => {
    const bad = wsUrlOf(`${stack.proxyUrl}/vnc_auto.html`, '00000000-0000-4000-8000-000000000000');
    const from = (ip: string) => ({ headers: { 'X-Forwarded-For': ip } });
    for (let i = 0; i < 5; i++) {
      const r = await openWs(bad, from('203.0.113.7'));
      assert.ok(!r.ok && r.status === 401);
    }
    const blocked = await openWs(wsUrlOf(await consoleUrl(stack, s.active.id)), from('203.0.113.7'));
    assert.ok(!blocked.ok && blocked.status === 429);
    const other = await openConsole(await consoleUrl(stack, s.active.id), from('198.51.100.9'));
    other.ws.close();
  });
});

describe('idle timeout and maximum duration', () => {
  let stack: Stack;
  let s: Seed;
  before(async () => {
    stack = await startStack({ options: { proxyIdleTimeoutSeconds: '2', proxyMaxSessionSeconds: '4' } });
    s = await seed(stack.app, { host: '127.0.0.1', port });
  });
  after(() => stack.stop());

  test('no input: closed 4202 after the idle timeout', async () => {
    const c = await openConsole(await consoleUrl(stack, s.active.id));
    const t0 = Date.now();
    const closed = await c.closed;
    assert.equal(closed.code, CloseCode.IdleTimeout);
    assert.ok(Date.now() - t0 >= 1500);
  });

  test('typing keeps it open until the maximum duration: closed 4203', async () => {
    const c = await openConsole(await consoleUrl(stack, s.active.id));
    const typer = setInterval(() => c.client.sendKey(0x61, true), 500);
    const closed = await c.closed;
    clearInterval(typer);
    assert.equal(closed.code, CloseCode.MaxDuration);
  });
});

describe('token expiry at the proxy (injected clock)', () => {
  let stack: Stack;
  let s: Seed;
  const clock = new ManualClock(Date.now());
  before(async () => {
    stack = await startStack({ clock });
    s = await seed(stack.app, { host: '127.0.0.1', port });
  });
  after(() => stack.stop());

  test('an expired token is 401 "expired"', async () => {
    const u = await consoleUrl(stack, s.active.id);
    clock.advance(600_000);
    const r = await openWs(wsUrlOf(u));
    assert.ok(!r.ok && r.status === 401 && /expired/.test(r.body));
  });
});
