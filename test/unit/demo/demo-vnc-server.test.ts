import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { WebSocketServer, WebSocket } from 'ws';
import { BackendError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { DemoVncServer, type DemoVncServerOptions } from '../../../src/demo/demo-vnc-server.js';
import { parseListenAddress, runDemoVnc } from '../../../src/demo/run-demo-vnc.js';
import { Encoding, Keysym, SecurityType } from '../../../src/rfb/constants.js';
import { PixelConverter, type PixelFormat } from '../../../src/rfb/pixel-format.js';
import { RfbTestClient, webSocketTransport, type RfbTestClientOptions } from '../../helpers/rfb-test-client.js';

const BG = 0x000000;
const FRAME = 800 * 480;

async function start(t: TestContext, opts: Partial<DemoVncServerOptions> = {}) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } });
  const server = new DemoVncServer({ name: 'ecs-demo-01', logger, ...opts });
  const { port } = await server.listen(0, '127.0.0.1');
  const clients: RfbTestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });
  const connect = async (o: RfbTestClientOptions = {}): Promise<RfbTestClient> => {
    const c = await RfbTestClient.connectTcp(port, '127.0.0.1', o);
    clients.push(c);
    await c.waitUntil(() => c.updateCount > 0);
    return c;
  };
  return { server, port, connect, lines };
}

/** The pixel rectangle of text cells (row, col..col+n-1). */
function cellArea(server: DemoVncServer, row: number, col: number, n = 1) {
  const c = server.console;
  return { x: col * c.cellWidth, y: row * c.cellHeight, width: n * c.cellWidth, height: c.cellHeight };
}

test('security None: the offered types, the desktop name, and a screen of text', async (t) => {
  const { connect, server } = await start(t);
  const c = await connect();
  assert.deepEqual(c.offeredSecurityTypes, [SecurityType.None]);
  assert.equal(c.name, 'ecs-demo-01');
  assert.equal(c.width, 800);
  assert.equal(c.height, 480);
  const lit = c.countPixelsNot(BG);
  assert.ok(lit > 5000 && lit < FRAME / 2, `${lit} pixels of text`);
  // The prompt row holds text drawn from the font.
  const { row } = server.console.cursor;
  const prompt = cellArea(server, row, 0, 'ecs-demo-01 login:'.length);
  assert.ok(c.countPixelsNot(BG, prompt.x, prompt.y, prompt.width, prompt.height) > 100);
});

test('VNC authentication: the right password gets in, a wrong one is refused and the server carries on', async (t) => {
  const { connect, server, port } = await start(t, { password: 'demo-pw' });
  const c = await connect({ password: 'demo-pw' });
  assert.deepEqual(c.offeredSecurityTypes, [SecurityType.VncAuthentication]);
  await assert.rejects(RfbTestClient.connectTcp(port, '127.0.0.1', { password: 'nope' }), (e: unknown) => e instanceof BackendError && e.code === 'BACKEND_AUTH_FAILED' && /wrong password/.test(e.message));
  await assert.rejects(RfbTestClient.connectTcp(port, '127.0.0.1', {}), /requires VNC authentication but no password/);
  // Still serving the first client.
  c.typeText('ok');
  await c.waitUntil(() => server.console.charAt(server.console.cursor.row, server.console.cursor.col - 1) === 0x6b);
  while (server.clientCount > 1) await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.clientCount, 1);
});

for (const maxVersion of ['3.3', '3.7', '3.8'] as const) {
  test(`an RFB ${maxVersion} client, with and without a password`, async (t) => {
    const open = await start(t);
    const a = await open.connect({ maxVersion });
    assert.equal(a.handshake.version, maxVersion);
    assert.ok(a.countPixelsNot(BG) > 5000);
    const locked = await start(t, { password: 'pw' });
    const b = await locked.connect({ maxVersion, password: 'pw' });
    assert.equal(b.handshake.version, maxVersion);
    assert.ok(b.countPixelsNot(BG) > 5000);
  });
}

test('typing "hello" changes pixels only where it is drawn, in small updates', async (t) => {
  const { connect, server } = await start(t);
  const c = await connect();
  const { row, col } = server.console.cursor;
  const before = c.snapshot();
  const areas: number[] = [];
  const watch = (async () => {
    while (areas.length < 100) {
      const u = await c.waitForUpdate().catch(() => undefined);
      if (!u) return;
      areas.push(u.rects.reduce((sum, r) => sum + r.width * r.height, 0));
    }
  })();
  c.typeText('hello');
  const hello = cellArea(server, row, col, 5);
  await c.waitUntil(() => server.console.charAt(row, col + 4) === 0x6f && c.countPixelsNot(BG, hello.x + hello.width - 6, hello.y, 6, hello.height) > 10);
  const after = c.snapshot();
  let inside = 0;
  for (let i = 0; i < FRAME; i++) {
    if (before[i] === after[i]) continue;
    const y = Math.floor(i / 800);
    // Changes are on the prompt row, or the status line's clock.
    assert.ok(Math.floor(y / 16) === row || Math.floor(y / 16) === server.console.rows - 1, `pixel changed at row ${y}`);
    const x = i % 800;
    if (y >= hello.y && y < hello.y + hello.height && x >= hello.x && x < hello.x + hello.width) inside++;
  }
  assert.ok(inside > 50, `${inside} pixels changed where "hello" is drawn`);
  c.close();
  await watch;
  assert.ok(areas.length > 0);
  for (const a of areas) assert.ok(a <= FRAME / 100, `an update after a keystroke covered ${a} pixels`);
});

test('an idle console costs next to nothing on the wire', async (t) => {
  const { connect } = await start(t);
  const c = await connect();
  await new Promise((r) => setTimeout(r, 300));
  const start0 = c.bytesReceived;
  const updates0 = c.updateCount;
  await new Promise((r) => setTimeout(r, 3000));
  const spent = c.bytesReceived - start0;
  assert.ok(c.updateCount > updates0, 'the cursor blinks');
  assert.ok(spent < 20_000, `${spent} bytes in 3 s of idle`);
});

test('malformed bytes close only that client, with the reason logged; others keep getting updates', async (t) => {
  const { connect, server, lines } = await start(t);
  const bad = await connect();
  const good = await connect();
  assert.equal(server.clientCount, 2);
  bad.sendRaw(Buffer.from([7, 0, 0, 0]));
  await bad.closed;
  const { row, col } = server.console.cursor;
  good.typeText('x');
  await good.waitUntil(() => server.console.charAt(row, col) === 0x78);
  const n = good.updateCount;
  await good.waitUntil(() => good.updateCount > n + 1);
  assert.equal(server.clientCount, 1);
  assert.ok(lines.some((l) => /unknown client message type 7/.test(l) && /closing demo VNC client/.test(l)), 'reason logged');
});

test('a SetEncodings count over the cap and a colour-map pixel format close the client', async (t) => {
  const { connect, lines } = await start(t);
  const a = await connect();
  a.sendRaw(Buffer.from('0200ffff', 'hex'));
  await a.closed;
  const b = await connect();
  const colourMap = Buffer.alloc(20);
  colourMap.set([8, 8, 0, 0], 4);
  b.sendRaw(colourMap);
  await b.closed;
  assert.ok(lines.some((l) => /SetEncodings count 65535 exceeds the limit/.test(l)));
  assert.ok(lines.some((l) => /colour-map pixel format/.test(l)));
});

test('several clients share one screen and one keyboard', async (t) => {
  const { connect, server } = await start(t);
  const clients = await Promise.all([1, 2, 3, 4].map(() => connect()));
  assert.equal(server.clientCount, 4);
  const { row, col } = server.console.cursor;
  clients[2]?.typeText('abc');
  const area = cellArea(server, row, col, 3);
  for (const c of clients) await c.waitUntil(() => c.countPixelsNot(BG, area.x, area.y, area.width, area.height) > 30);
  const text = (c: RfbTestClient) => c.snapshot().subarray(0, 16 * 800 * 20);
  for (const c of clients.slice(1)) assert.deepEqual(text(c), text(clients[0] as RfbTestClient));
});

test('Raw, 16 bpp big-endian and 8 bpp clients see the same screen as a ZRLE client', async (t) => {
  const { connect } = await start(t);
  const rgb565be: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
  const bgr233: PixelFormat = { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };
  const zrle = await connect();
  const rows = 20 * 16 * 800; // the boot log: no blinking cursor, no clock
  const cases: Array<[RfbTestClientOptions, PixelFormat | undefined]> = [
    [{ encodings: [Encoding.Raw] }, undefined],
    [{ pixelFormat: rgb565be }, rgb565be],
    [{ pixelFormat: rgb565be, encodings: [Encoding.Raw] }, rgb565be],
    [{ pixelFormat: bgr233 }, bgr233],
  ];
  for (const [opts, pf] of cases) {
    const other = await connect(opts);
    const conv = pf ? new PixelConverter(pf) : undefined;
    const want = zrle.snapshot().subarray(0, rows).map((p) => (conv ? conv.unpack(conv.pack(p)) : p));
    assert.deepEqual(other.snapshot().subarray(0, rows), want);
  }
});

test('scrolling goes out as CopyRect, and the result matches a client without CopyRect', async (t) => {
  const { connect } = await start(t);
  const copy = await connect();
  const plain = await connect({ encodings: [Encoding.ZRLE] });
  let sawCopyRect = false;
  const done = (async () => {
    for (;;) {
      const u = await copy.waitForUpdate(2000).catch(() => undefined);
      if (!u) return;
      if (u.rects.some((r) => r.encoding === Encoding.CopyRect)) sawCopyRect = true;
    }
  })();
  for (let i = 0; i < 8; i++) {
    copy.typeText(`line${i}`);
    copy.sendKey(Keysym.Return, true);
    copy.sendKey(Keysym.Return, false);
    await new Promise((r) => setTimeout(r, 30));
  }
  await new Promise((r) => setTimeout(r, 300));
  // The status line and the cursor row blink on their own: compare the text rows above them.
  const rows = 25 * 16 * 800;
  await copy.waitUntil(() => sawCopyRect);
  assert.deepEqual(copy.snapshot().subarray(0, rows), plain.snapshot().subarray(0, rows));
  copy.close();
  await done;
});

test('the test client also runs over a WebSocket (binary messages)', async (t) => {
  const { port } = await start(t);
  // A bare WebSocket-to-TCP bridge, as websockify would be.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    const tcp = net.connect(port, '127.0.0.1');
    tcp.on('data', (d) => ws.send(d));
    ws.on('message', (d) => tcp.write(d as Buffer));
    ws.on('close', () => tcp.destroy());
    tcp.on('close', () => ws.close());
  });
  t.after(() => new Promise<void>((r) => wss.close(() => r())));
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`);
  await once(ws, 'open');
  const c = await RfbTestClient.connect(webSocketTransport(ws));
  await c.waitUntil(() => c.updateCount > 0);
  assert.ok(c.countPixelsNot(BG) > 5000);
  c.close();
  await c.closed;
});

test('runDemoVnc parses host:port and starts a server', async () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:5900'), { host: '127.0.0.1', port: 5900 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress(':5901'), { host: '127.0.0.1', port: 5901 });
  for (const bad of ['5900', 'host:', 'a:b', 'h:70000', '::1:5900']) assert.throws(() => parseListenAddress(bad), /listen address must be host:port/, bad);
  const run = await runDemoVnc({ listen: '127.0.0.1:0', name: 'cli-demo', logger: createLogger({ level: 'silent' }) });
  try {
    const c = await RfbTestClient.connectTcp(run.port);
    assert.equal(c.name, 'cli-demo');
    c.close();
    await c.closed;
  } finally {
    await run.server.close();
  }
});
