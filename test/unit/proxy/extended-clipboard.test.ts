/**
 * ExtendedClipboard through the proxy: the browser's extended ClientCutText (negative length)
 * reaches the backend only when the backend announced the extension (a caps ServerCutText) and
 * the message is well formed; otherwise the session is closed 4400 and the backend gets nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from '../../../src/inventory/types.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import {
  ByteReader, ClientMessageFramer, Encoding, RGB888_PIXEL_FORMAT, SecurityType, clientHandshake, encodeFramebufferUpdateRequest, encodeSetEncodings,
  encodeServerInit, serverHandshake, type ClientMessage,
} from '../../../src/rfb/index.js';
import { closeOf, openWs } from '../../helpers/console-client.js';
import { seed, startStack, type Stack } from '../../helpers/stack.js';

/** noVNC's caps reply (core/rfb.js extendedClipboardCaps): caps|request|peek|notify|provide, text, one size. */
const BROWSER_CAPS = Buffer.from('06000000' + 'fffffff8' + '1f000001' + '00000000', 'hex');
/** noVNC's notify for text. */
const BROWSER_NOTIFY = Buffer.from('06000000' + 'fffffffc' + '08000001', 'hex');
/** A server's caps: text, request/notify/provide, a 0-byte unsolicited size. */
const SERVER_CAPS = Buffer.from('03000000' + 'fffffff8' + '1b000001' + '00000000', 'hex');
/** RFC 6143 7.6.1: a FramebufferUpdate of no rectangles. */
const EMPTY_UPDATE = Buffer.from('00000000', 'hex');

/** A VNC server (security None) that records what it receives after ClientInit, and answers like a real one. */
class RecordingBackend {
  readonly server: NetServer;
  received: Buffer[] = [];
  announce = false;

  constructor() {
    this.server = createServer((sock) => void this.accept(sock));
  }

  private async accept(sock: Socket): Promise<void> {
    sock.on('error', () => sock.destroy());
    this.received = [];
    const reader = new ByteReader();
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('close', () => reader.end());
    try {
      await serverHandshake(reader, (b) => void sock.write(b), { version: '3.8', securityTypes: [SecurityType.None], signal: AbortSignal.timeout(5000) });
    } catch {
      return void sock.destroy();
    }
    sock.write(encodeServerInit({ width: 64, height: 48, pixelFormat: RGB888_PIXEL_FORMAT, name: 'rec' }));
    sock.removeAllListeners('data');
    const framer = new ClientMessageFramer();
    const onData = (d: Buffer): void => {
      this.received.push(d);
      let msgs: ClientMessage[] = [];
      try {
        msgs = framer.push(d);
      } catch {
        /* recorded; a server would drop the connection or wait for 4 GiB */
      }
      for (const m of msgs) {
        // rfbproto: the caps message answers each SetEncodings that lists the pseudo-encoding.
        if (m.type === 'SetEncodings' && this.announce && m.encodings.includes(Encoding.ExtendedClipboard)) sock.write(SERVER_CAPS);
        if (m.type === 'FramebufferUpdateRequest') sock.write(EMPTY_UPDATE);
      }
    };
    sock.on('data', onData);
    const rest = reader.takeRemainder();
    if (rest.length > 0) onData(rest);
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  /** The client messages received (valid ones only). */
  messages(): ClientMessage[] {
    return new ClientMessageFramer().push(this.bytes);
  }
}

let stack: Stack;
let backend: RecordingBackend;
let server: Server;

before(async () => {
  backend = new RecordingBackend();
  backend.server.listen(0, '127.0.0.1');
  await once(backend.server, 'listening');
  const { port } = backend.server.address() as { port: number };
  stack = await startStack({ options: { logLevel: 'warn' } });
  server = (await seed(stack.app, { host: '127.0.0.1', port })).active;
});

after(async () => {
  await stack.stop();
  backend.server.close();
});

/** A console through the proxy, handshake done; what arrives afterwards is collected. */
async function session(): Promise<{ send(b: Buffer): void; received: () => Buffer; closed: Promise<{ code: number; reason: string }> }> {
  const { token } = await stack.app.services.consoleTokens.issue(server);
  const r = await openWs(`${stack.proxyUrl.replace(/^http/, 'ws')}/websockify?token=${token}`);
  assert.ok(r.ok);
  const closed = closeOf(r.ws);
  const reader = new ByteReader();
  r.transport.onData((b) => reader.push(b));
  await clientHandshake(reader, (b) => r.transport.write(b), { signal: AbortSignal.timeout(5000) });
  return { send: (b) => r.transport.write(b), received: () => reader.takeRemainder(), closed };
}

/** The close the proxy sent, within 3 s (a session left open fails here instead of hanging). */
async function closeWithin(closed: Promise<{ code: number; reason: string }>): Promise<{ code: number; reason: string }> {
  const r = await Promise.race([closed, sleep(3000).then(() => null)]);
  assert.ok(r, 'the session stayed open');
  return r;
}

async function waitFor(what: string, f: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !f(); i++) await sleep(10);
  assert.ok(f(), what);
}

/** Asks for ExtendedClipboard and a first update, as noVNC does; waits for that update. */
async function firstUpdate(s: Awaited<ReturnType<typeof session>>): Promise<void> {
  s.send(Buffer.concat([encodeSetEncodings([Encoding.Raw, Encoding.ExtendedClipboard]), encodeFramebufferUpdateRequest(false, 0, 0, 64, 48)]));
  let got = Buffer.alloc(0);
  await waitFor('the first update', () => (got = Buffer.concat([got, s.received()])).length >= EMPTY_UPDATE.length);
}

test('extended ClientCutText (length 0xFFFFFFFF) to a server that never announced ExtendedClipboard: 4400, the server gets nothing of it', async () => {
  backend.announce = false;
  const s = await session();
  await firstUpdate(s);
  s.send(Buffer.from('06000000' + 'ffffffff' + '41', 'hex'));
  const closed = await closeWithin(s.closed);
  assert.equal(closed.code, CloseCode.BadClientData);
  // |length| 1 cannot even hold the flags: refused as malformed, whether announced or not.
  assert.equal(closed.reason, 'The browser sent a malformed RFB message.');
  assert.ok(!backend.bytes.includes(Buffer.from('06000000ffffffff', 'hex')), 'the server received the extended message');
});

test('well-formed extended clipboard before any announcement (noVNC\'s notify): 4400, not relayed', async () => {
  backend.announce = false;
  const s = await session();
  s.send(BROWSER_NOTIFY);
  const closed = await closeWithin(s.closed);
  assert.equal(closed.code, CloseCode.BadClientData);
  assert.equal(closed.reason, 'The browser sent an extended clipboard message the server did not announce.');
  assert.ok(!backend.bytes.includes(BROWSER_NOTIFY));
});

test('a server that announced it gets noVNC\'s caps and notify; malformed flags still close 4400', async () => {
  backend.announce = true;
  const s = await session();
  s.send(Buffer.concat([encodeSetEncodings([Encoding.Raw, Encoding.ExtendedClipboard]), encodeFramebufferUpdateRequest(false, 0, 0, 64, 48)]));
  let got = Buffer.alloc(0);
  await waitFor('the caps message and the first update', () => (got = Buffer.concat([got, s.received()])).length >= SERVER_CAPS.length + EMPTY_UPDATE.length);
  assert.deepEqual(got, Buffer.concat([SERVER_CAPS, EMPTY_UPDATE]), 'the caps message is relayed as it came');
  s.send(BROWSER_CAPS);
  s.send(BROWSER_NOTIFY);
  await waitFor('the server received both', () => backend.bytes.includes(BROWSER_CAPS) && backend.bytes.includes(BROWSER_NOTIFY));
  // request and notify at once: rfbproto allows one action unless caps is set.
  const twoActions = Buffer.from('06000000' + 'fffffffc' + '0a000001', 'hex');
  s.send(twoActions);
  const closed = await closeWithin(s.closed);
  assert.equal(closed.code, CloseCode.BadClientData);
  assert.ok(!backend.bytes.includes(twoActions), 'the malformed message reached the server');
});

test('after a first update without an announcement, ExtendedClipboard is no longer asked for', async () => {
  backend.announce = false;
  const s = await session();
  await firstUpdate(s);
  s.send(encodeSetEncodings([Encoding.Raw, Encoding.ExtendedClipboard, Encoding.DesktopSize]));
  await waitFor('the second SetEncodings', () => backend.messages().filter((m) => m.type === 'SetEncodings').length === 2);
  const lists = backend.messages().flatMap((m) => (m.type === 'SetEncodings' ? [m.encodings] : []));
  assert.deepEqual(lists, [[Encoding.Raw, Encoding.ExtendedClipboard], [Encoding.Raw, Encoding.DesktopSize]]);
});

test('browser messages reach the server byte for byte: several in one frame, one split across frames, a SetEncodings rewritten among others', async () => {
  backend.announce = false;
  const s = await session();
  const key = Buffer.from('0401000000000061', 'hex');
  const pointer = Buffer.from('050000100020', 'hex');
  const request = encodeFramebufferUpdateRequest(true, 0, 0, 64, 48);
  const asked = encodeSetEncodings([Encoding.Raw, Encoding.ExtendedMouseButtons, Encoding.DesktopSize]);
  const relayed = encodeSetEncodings([Encoding.Raw, Encoding.DesktopSize]);
  s.send(Buffer.concat([key, pointer, request]));
  s.send(Buffer.concat([key, pointer.subarray(0, 3)]));
  s.send(Buffer.concat([pointer.subarray(3), request, key.subarray(0, 1)]));
  s.send(Buffer.concat([key.subarray(1), asked, pointer]));
  // Nothing held: the messages before the rewritten one go as they came, those after it too.
  s.send(Buffer.concat([pointer, key, asked, request, pointer]));
  const expected = Buffer.concat([key, pointer, request, key, pointer, request, key, relayed, pointer, pointer, key, relayed, request, pointer]);
  await waitFor('every byte', () => backend.bytes.length >= expected.length);
  assert.deepEqual(backend.bytes, expected);
});

test('a recorded session\'s server is offered only the encodings its recording can be made seekable in (no Tight, Zlib, RRE, JPEG, H.264)', async () => {
  // noVNC 1.7's list (core/rfb.js _sendEncodings), in its order.
  const novnc = [Encoding.CopyRect, 50, Encoding.Tight, Encoding.TightPNG, Encoding.ZRLE, Encoding.JPEG, Encoding.Hextile, Encoding.RRE, Encoding.Zlib, Encoding.Raw,
    -26, -250, Encoding.DesktopSize, Encoding.LastRect, -258, -261, -308, -309, -312, -313, -307, -239];
  const sent = async (): Promise<number[]> => {
    const s = await session();
    s.send(encodeSetEncodings(novnc));
    await waitFor('the SetEncodings', () => backend.messages().some((m) => m.type === 'SetEncodings'));
    const m = backend.messages().find((x) => x.type === 'SetEncodings');
    return m?.type === 'SetEncodings' ? m.encodings : [];
  };
  assert.deepEqual(await sent(), novnc, 'not recorded: the list as the browser sent it');
  await stack.app.services.recordings.setPolicy({ scope: 'server', scopeId: server.id, enabled: true });
  try {
    assert.deepEqual(await sent(), [Encoding.CopyRect, Encoding.ZRLE, Encoding.Hextile, Encoding.Raw, -26, -250, Encoding.DesktopSize, Encoding.LastRect, -258, -261, -308, -309, -312, -313, -307, -239]);
  } finally {
    await stack.app.services.recordings.removePolicy('server', server.id);
  }
});
