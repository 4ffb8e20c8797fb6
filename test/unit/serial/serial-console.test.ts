/**
 * Serial consoles end to end on one node, against a stand-in serial port (a TCP server that
 * prints a banner and echoes what it is sent): the Huawei call's serial extension, serial tokens
 * opening only the serial WebSocket (and VNC tokens only noVNC's), the history and live output
 * fanned out to several viewers, one typing at a time with take-over, and the page's files.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { openWs } from '../../helpers/console-client.js';
import { http, signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';
import type { Server } from '../../../src/inventory/types.js';

/** A stand-in serial port: prints a banner, then echoes `[x]` for each byte x it receives. */
class FakeSerialPort {
  readonly received: Buffer[] = [];
  readonly clients: Socket[] = [];
  private server: NetServer;
  port = 0;
  constructor() {
    this.server = createServer((sock) => {
      this.clients.push(sock);
      sock.write('SeaBIOS (stand-in)\r\nbooting from disk...\r\n');
      sock.on('data', (d: Buffer) => {
        this.received.push(d);
        sock.write(`[${d.toString('latin1')}]`);
      });
      sock.on('error', () => undefined);
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }
  print(text: string): void {
    for (const c of this.clients) c.write(text);
  }
  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

let stack: Stack;
let s: Seed;
let serialPort: FakeSerialPort;
let withSerial: Server;

before(async () => {
  serialPort = new FakeSerialPort();
  const port = await serialPort.listen();
  stack = await startStack();
  s = await seed(stack.app);
  withSerial = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'tty-01', console: { host: '127.0.0.1', port: 5999, serial: `127.0.0.1:${port}` } });
});
after(async () => {
  await stack.stop();
  await serialPort.close();
});

const remoteConsole = (serverId: string, body: unknown) =>
  signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${serverId}/remote_console`, JSON.stringify(body), { ak: s.ak, sk: s.sk, projectId: s.projectId });
const serialUrl = async (serverId = withSerial.id): Promise<string> => {
  const r = await remoteConsole(serverId, { remote_console: { protocol: 'serial', type: 'serial' } });
  assert.equal(r.status, 200, r.text);
  const rc = (r.json as { remote_console: { type: string; protocol: string; url: string } }).remote_console;
  assert.equal(rc.type, 'serial');
  assert.equal(rc.protocol, 'serial');
  assert.match(rc.url, /\/serial\.html\?token=[0-9a-f-]{36}&lang=EN/);
  return rc.url;
};
const serialWs = (consoleUrl: string): string => {
  const u = new URL(consoleUrl);
  return `ws://${u.host}/serial-websocket?token=${u.searchParams.get('token')}`;
};

/** A viewer: collects output (binary) and role messages (text). */
interface Viewer {
  ws: WebSocket;
  output(): string;
  roles: Array<{ role: string; writer: string | null }>;
  waitFor(re: RegExp): Promise<void>;
  waitRole(role: string): Promise<void>;
}
async function view(consoleUrl: string): Promise<Viewer> {
  // Listening from the start: the proxy's first messages may come with the 101 answer.
  const ws = new WebSocket(serialWs(consoleUrl), { origin: new URL(consoleUrl).origin });
  let out = '';
  const roles: Viewer['roles'] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data, isBinary) => {
    const b = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
    if (isBinary) out += b.toString('latin1');
    else roles.push(JSON.parse(b.toString('utf8')) as { role: string; writer: string | null });
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('unexpected-response', (_q, r) => rej(new Error(`refused: ${r.statusCode}`)));
    ws.once('error', rej);
  });
  const until = async (ok: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far ${JSON.stringify(out)}, roles ${JSON.stringify(roles)}`);
      await new Promise<void>((res) => {
        waiters.push(res);
        setTimeout(res, 100);
      });
    }
  };
  return {
    ws, roles, output: () => out,
    waitFor: (re) => until(() => re.test(out), String(re)),
    waitRole: (role) => until(() => roles.at(-1)?.role === role, `role ${role}`),
  };
}

test('the Huawei call gives a serial console URL with {"protocol":"serial","type":"serial"}; other combinations keep Huawei\'s error; a server without a serial port is refused', async () => {
  await serialUrl();
  for (const rc of [{ protocol: 'serial', type: 'novnc' }, { protocol: 'vnc', type: 'serial' }, { protocol: 'spice', type: 'spice-html5' }]) {
    const r = await remoteConsole(withSerial.id, { remote_console: rc });
    assert.equal(r.status, 400, JSON.stringify(rc));
    assert.equal((r.json as { error: { code: string } }).error.code, 'Ecs.0005', r.text);
  }
  const none = await remoteConsole(s.active.id, { remote_console: { protocol: 'serial', type: 'serial' } });
  assert.equal(none.status, 400, none.text);
  assert.match(none.text, /has no serial console/);
});

test('a serial link opens the serial WebSocket once; it is refused on noVNC\'s path (and a VNC link on the serial path) without being spent', async () => {
  const u = await serialUrl();
  const token = new URL(u).searchParams.get('token')!;
  const wrong = await openWs(`ws://${new URL(u).host}/websockify?token=${token}`);
  assert.ok(!wrong.ok && wrong.status === 401 && /another kind of console/.test(wrong.body), JSON.stringify(wrong));
  const pre = await http('POST', `${stack.proxyUrl}/api/console/info`, { 'content-type': 'application/json' }, JSON.stringify({ token }));
  assert.equal((pre.json as { state: string; kind: string }).kind, 'serial');
  const v = await view(u);
  await v.waitFor(/booting from disk/);
  v.ws.close();
  const again = await openWs(serialWs(u));
  assert.ok(!again.ok && again.status === 401 && /already used/.test(again.body), JSON.stringify(again));

  const vnc = await remoteConsole(withSerial.id, { remote_console: { protocol: 'vnc', type: 'novnc' } });
  const vncToken = new URL((vnc.json as { remote_console: { url: string } }).remote_console.url).searchParams.get('token')!;
  const r = await openWs(`ws://${new URL(u).host}/serial-websocket?token=${vncToken}`);
  assert.ok(!r.ok && r.status === 401 && /another kind of console/.test(r.body), JSON.stringify(r));
  const bad = await openWs(`ws://${new URL(u).host}/serial-websocket?token=${vncToken}`, { origin: 'https://evil.example' });
  assert.ok(!bad.ok && bad.status === 403, 'the Origin is checked as for VNC');
});

test('several viewers watch one port: history then live output to all; the first types, the others\' keys are dropped until one takes over', async () => {
  const a = await view(await serialUrl());
  await a.waitRole('writer');
  await a.waitFor(/SeaBIOS/);
  const b = await view(await serialUrl());
  await b.waitRole('viewer');
  // The port is held once: b gets the history kept so far, not a second banner.
  await b.waitFor(/booting from disk/);
  assert.equal(serialPort.clients.filter((c) => !c.destroyed).length, 1, 'one connection to the port, fanned out');
  assert.match(b.roles.at(-1)!.writer ?? '', /^session [0-9a-f]{8} from 127\.0\.0\.1$/);

  const before = serialPort.received.length;
  b.ws.send(Buffer.from('x'));
  a.ws.send(Buffer.from('a'));
  await a.waitFor(/\[a\]/);
  await b.waitFor(/\[a\]/);
  assert.equal(Buffer.concat(serialPort.received.slice(before)).toString(), 'a', 'only the writer\'s keys reach the port');

  b.ws.send(JSON.stringify({ type: 'take' }));
  await b.waitRole('writer');
  await a.waitRole('viewer');
  b.ws.send(Buffer.from('b'));
  a.ws.send(Buffer.from('z'));
  await a.waitFor(/\[b\]/);
  assert.equal(Buffer.concat(serialPort.received.slice(before)).toString(), 'ab');

  serialPort.print('live line\r\n');
  await a.waitFor(/live line/);
  await b.waitFor(/live line/);
  // The writer leaves: the viewer watching longest types next.
  b.ws.close();
  await a.waitRole('writer');
  b.ws.terminate();
  a.ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
  a.ws.send(JSON.stringify({ type: 'nonsense' }));
  const closed = await new Promise<number>((r) => a.ws.once('close', (code) => r(code)));
  assert.equal(closed, 4400, 'an unknown control message closes the session');
});

test('the serial page and xterm.js are served from the npm package with the page\'s CSP; stopping the server closes its serial sessions', async () => {
  const page = await http('GET', `${stack.proxyUrl}/serial.html`);
  assert.equal(page.status, 200);
  assert.match(page.text, /\/static\/serial\.js/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self';/);
  const xterm = await http('GET', `${stack.proxyUrl}/xterm/lib/xterm.mjs`);
  assert.equal(xterm.status, 200);
  assert.match(String(xterm.headers['content-type']), /javascript/);
  assert.ok(xterm.text.length > 100_000);
  assert.equal((await http('GET', `${stack.proxyUrl}/xterm/css/xterm.css`)).status, 200);
  assert.equal((await http('GET', `${stack.proxyUrl}/xterm-fit/lib/addon-fit.mjs`)).status, 200);
  assert.equal((await http('GET', `${stack.proxyUrl}/static/serial.js`)).status, 200);

  const v = await view(await serialUrl());
  await v.waitRole('writer');
  const closed = new Promise<number>((r) => v.ws.once('close', (code) => r(code)));
  await stack.app.services.inventory.setStatus(withSerial.id, 'SHUTOFF');
  assert.equal(await closed, 4200);
  await stack.app.services.inventory.setStatus(withSerial.id, 'ACTIVE');
});

const output = (serverId: string, query = '', as: { ak: string; sk: string; projectId: string } = { ak: s.ak, sk: s.sk, projectId: s.projectId }) =>
  signedHttp('GET', `${stack.apiUrl}/v1/${as.projectId}/cloudservers/${serverId}/console_output${query}`, '', as);

test('console output: the same text the port printed, `length` as last lines, a cursor for only what is new; errors in Huawei\'s shape', async () => {
  // The port was let go when the server stopped: the first call takes it again, and the stand-in
  // prints its banner once more; read until the output stops growing.
  // The stop reaches the serial hub through the change feed, a little after the page's close:
  // wait until the port's connection is gone, so the banner of the next one comes before the cursor.
  const letGoBy = Date.now() + 5000;
  while (serialPort.clients.some((c) => !c.destroyed) && Date.now() < letGoBy) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!serialPort.clients.some((c) => !c.destroyed), 'the port was let go when the server stopped');
  let all = await output(withSerial.id);
  assert.equal(all.status, 200, all.text);
  const retakeBy = Date.now() + 10_000;
  while (!serialPort.clients.some((c) => !c.destroyed) && Date.now() < retakeBy) await new Promise((r) => setTimeout(r, 50));
  for (let prev = -1; all.json.cursor !== prev; ) {
    prev = all.json.cursor;
    await new Promise((r) => setTimeout(r, 200));
    all = await output(withSerial.id);
  }
  const o = all.json as { output: string; cursor: number; start: number; missed: number; live: boolean };
  assert.match(o.output, /SeaBIOS \(stand-in\)\r\nbooting from disk\.\.\.\r\n/);
  assert.equal(o.live, true);
  assert.equal(o.cursor, Buffer.byteLength(o.output) + o.start);

  serialPort.print('line A\r\nline B\r\nline C\r\n');
  const deadline = Date.now() + 5000;
  let fresh: { output: string; cursor: number; start: number };
  do {
    fresh = (await output(withSerial.id, `?cursor=${o.cursor}`)).json;
  } while (!/line C/.test(fresh.output) && Date.now() < deadline && (await new Promise((r) => setTimeout(r, 50)), true));
  assert.equal(fresh.output, 'line A\r\nline B\r\nline C\r\n', 'with the cursor: only what is new');
  assert.equal(fresh.start, o.cursor);
  const none = (await output(withSerial.id, `?cursor=${fresh.cursor}`)).json as { output: string; cursor: number };
  assert.deepEqual([none.output, none.cursor], ['', fresh.cursor]);
  const two = (await output(withSerial.id, '?length=2')).json as { output: string };
  assert.equal(two.output, 'line B\r\nline C\r\n');

  for (const q of ['?length=-1', '?length=abc', '?cursor=1.5', '?length=10001']) {
    const r = await output(withSerial.id, q);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.code, 'Ecs.0005', q);
  }
  assert.equal((await output(s.foreign.id)).status, 404, 'another project\'s server is not found');
  assert.equal((await output(s.active.id)).status, 400, 'no serial port');
  assert.match((await output(s.active.id)).text, /has no serial console/);
  const limited = await output(withSerial.id, '', { ak: s.limitedAk, sk: s.limitedSk, projectId: s.projectId });
  assert.equal(limited.status, 403, 'the console permission is needed');
});

test('console output from another node: read from the store (the holder saves it every second), a viewer there is refused with 4103', async () => {
  const other = await startStack({ options: { store: stack.config.store, nodeId: 'node-b' }, dataDir: stack.dataDir });
  try {
    serialPort.print('saved for the fleet\r\n');
    await new Promise((r) => setTimeout(r, 1500));
    const r = await signedHttp('GET', `${other.apiUrl}/v1/${s.projectId}/cloudservers/${withSerial.id}/console_output?length=1`, '', { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.output, r.json.live], ['saved for the fleet\r\n', false]);
    const u = await serialUrl();
    const ws = new WebSocket(`ws://${new URL(other.proxyUrl).host}/serial-websocket?token=${new URL(u).searchParams.get('token')}`, { origin: other.proxyUrl });
    const code = await new Promise<number>((res) => ws.once('close', (c) => res(c)));
    assert.equal(code, 4103);
  } finally {
    await other.stop();
  }
});
