/** Slow and heavy clients: slowloris against both servers, a flood of bad tokens from one address. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { ManualClock } from '../../../src/clock.js';
import { DemoVncServer } from '../../../src/demo/index.js';
import { openConsole, wsUrlOf } from '../../helpers/console-client.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let stack: Stack;
let s: Seed;
// The service's time (the failed-token limit's minute, token TTLs) moves only when a test moves it:
// a flood that takes more than a minute of wall time on a loaded machine still falls in one minute.
// Node's own header timeout (slowloris) runs on wall time, as in production.
const clock = new ManualClock(Date.now());
before(async () => {
  vnc = new DemoVncServer({ name: 'abuse', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  stack = await startStack({ clock, options: { httpHeadersTimeoutSeconds: '2', apiRateLimitPerAddress: '0' } });
  s = await seed(stack.app, { host: '127.0.0.1', port });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

/** Opens `n` connections that send a request line and then one header byte a second, forever. */
function slowloris(port: number, n: number): { sockets: Socket[]; closed: () => number; stop(): void } {
  const sockets: Socket[] = [];
  let closed = 0;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < n; i++) {
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.on('close', () => closed++);
    sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    timers.push(setInterval(() => sock.writable && sock.write('a'), 1000));
    sockets.push(sock);
  }
  return { sockets, closed: () => closed, stop: () => { timers.forEach(clearInterval); sockets.forEach((x) => x.destroy()); } };
}

test('slowloris on the API and the proxy: normal clients are served meanwhile, slow ones are cut off', async () => {
  const apiPort = Number(new URL(stack.apiUrl).port);
  const proxyPort = Number(new URL(stack.proxyUrl).port);
  const a = slowloris(apiPort, 300);
  const p = slowloris(proxyPort, 300);
  try {
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 5; i++) {
      assert.equal((await http('GET', `${stack.apiUrl}/healthz`)).status, 200);
      assert.equal((await http('GET', `${stack.proxyUrl}/healthz`)).status, 200);
    }
    const { token } = await stack.app.services.consoleTokens.issue(s.active);
    const c = await openConsole(`${stack.proxyUrl}/vnc_auto.html?token=${token}`);
    await c.client.waitUntil(() => c.client.updateCount > 0);
    c.ws.close();
    // Past the 2 s header timeout (checked every second) every slow connection is gone.
    const deadline = Date.now() + 8000;
    while ((a.closed() < 300 || p.closed() < 300) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(a.closed(), 300, 'API closed every slow connection');
    assert.equal(p.closed(), 300, 'proxy closed every slow connection');
  } finally {
    a.stop();
    p.stop();
  }
});

test('a 10,000-bad-token flood from one address leaves another address\'s console working', async () => {
  const bad = wsUrlOf(`${stack.proxyUrl}/vnc_auto.html`, '00000000-0000-4000-8000-000000000000');
  const statuses = new Map<number, number>();
  const attempt = (): Promise<void> => new Promise((resolve) => {
    // 127.0.0.2 is loopback too: the flood comes from another address than the user below.
    const ws = new WebSocket(bad, { localAddress: '127.0.0.2', origin: stack.proxyUrl });
    ws.on('unexpected-response', (_req, res) => {
      statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
      res.resume();
      resolve();
    });
    ws.on('open', () => { statuses.set(101, (statuses.get(101) ?? 0) + 1); ws.terminate(); resolve(); });
    ws.on('error', () => resolve());
  });
  const auditBefore = (await stack.app.services.stores.audit.listAudit({ kind: 'rejected', limit: 100_000 })).length;
  let userOk = 0;
  const user = (async () => {
    // While the flood runs, the other address opens consoles.
    for (let i = 0; i < 5; i++) {
      const { token } = await stack.app.services.consoleTokens.issue(s.active);
      const c = await openConsole(`${stack.proxyUrl}/vnc_auto.html?token=${token}`);
      await c.client.waitUntil(() => c.client.updateCount > 0);
      c.ws.close();
      userOk++;
    }
  })();
  const total = 10_000;
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < total) {
      next++;
      await attempt();
    }
  }));
  await user;
  assert.equal(userOk, 5);
  assert.equal(statuses.get(101) ?? 0, 0, 'no bad token was accepted');
  assert.equal(statuses.get(401), 30, 'the first 30 unknown tokens are told so');
  assert.equal(statuses.get(429), total - 30, 'the rest are throttled');
  const auditAfter = (await stack.app.services.stores.audit.listAudit({ kind: 'rejected', limit: 100_000 })).length;
  assert.ok(auditAfter - auditBefore <= 31, `throttled attempts are not written one by one (${auditAfter - auditBefore} audit rows)`);
  // Still throttled within the minute; a new minute tells unknown tokens so again.
  statuses.clear();
  clock.advance(59_000);
  await attempt();
  assert.deepEqual([...statuses], [[429, 1]], 'throttled until the minute ends');
  clock.advance(1_000);
  await attempt();
  assert.deepEqual([...statuses], [[429, 1], [401, 1]], 'the next minute starts a new count');
});
