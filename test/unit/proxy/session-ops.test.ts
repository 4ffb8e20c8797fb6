/** Operating live sessions: `sessions list|kill` from another process, ping/pong, message size. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { runCli } from '../../helpers/cli.js';
import { closeOf, openConsole, wsUrlOf } from '../../helpers/console-client.js';
import { RfbTestClient } from '../../helpers/rfb-test-client.js';
import { bufferedTransport } from '../../helpers/console-client.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let stack: Stack;
let s: Seed;
before(async () => {
  vnc = new DemoVncServer({ name: 'ops', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  stack = await startStack({ options: { proxyPingIntervalSeconds: '1', proxyMaxMessageBytes: '4096' } });
  s = await seed(stack.app, { host: '127.0.0.1', port });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

async function url(): Promise<string> {
  const { token } = await stack.app.services.consoleTokens.issue(await stack.app.services.inventory.getServer(s.active.id));
  return `${stack.proxyUrl}/vnc_auto.html?token=${token}`;
}

test('sessions list (another process) shows live sessions; sessions kill ends one with 4201 within 1 s', async () => {
  const a = await openConsole(await url());
  const b = await openConsole(await url());
  await new Promise((r) => setTimeout(r, 100));
  const env = { ECS_CONSOLE_DATA_DIR: stack.dataDir };
  const list = await runCli(['sessions', 'list', '--json'], env);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Array<{ id: string; server: string; token: string }>;
  assert.equal(rows.length, 2);
  assert.ok(rows.every((r) => r.server === s.active.id && /^[0-9a-f]{8}$/.test(r.token)));
  const kill = await runCli(['sessions', 'kill', rows[0]!.id], env);
  assert.equal(kill.code, 0, kill.stderr);
  // Timed from the kill's return (the request is in the store), not from the CLI's start: a
  // loaded machine can take seconds to start a process, which says nothing of the delivery.
  const t0 = Date.now();
  const closed = await Promise.race([a.closed, b.closed]);
  assert.equal(closed.code, CloseCode.Killed);
  assert.ok(Date.now() - t0 < 1000, 'within 1 s of the kill being recorded');
  const after = JSON.parse((await runCli(['sessions', 'list', '--json'], env)).stdout) as unknown[];
  assert.equal(after.length, 1);
  const none = await runCli(['sessions', 'kill', '00000000-0000-4000-8000-000000000000'], env);
  assert.equal(none.code, 3);
  a.ws.close();
  b.ws.close();
});

test('sessions kill --server ends every session of that server', async () => {
  const a = await openConsole(await url());
  await new Promise((r) => setTimeout(r, 100));
  const kill = await runCli(['sessions', 'kill', '--server', s.active.id], { ECS_CONSOLE_DATA_DIR: stack.dataDir });
  assert.equal(kill.code, 0, kill.stderr);
  assert.equal((await a.closed).code, CloseCode.Killed);
});

test('a browser that stops answering pings is disconnected', async () => {
  const ws = new WebSocket(wsUrlOf(await url()), ['binary'], { origin: stack.proxyUrl, autoPong: false });
  const transport = bufferedTransport(ws);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  const closed = closeOf(ws);
  const client = await RfbTestClient.connect(transport);
  // Keep typing so the idle timeout is not what ends it.
  const typer = setInterval(() => client.sendKey(0x61, true), 300);
  const t0 = Date.now();
  const c = await closed;
  clearInterval(typer);
  assert.equal(c.code, 1006, 'terminated, not closed');
  assert.ok(Date.now() - t0 < 5000);
});

test('a browser message above the size limit closes that session (1009)', async () => {
  const c = await openConsole(await url());
  c.client.sendRaw(Buffer.alloc(5000, 0));
  const closed = await c.closed;
  assert.equal(closed.code, 1009);
});
