/**
 * The benchmark's VNC backend: a small RFB 3.8 server on src/rfb that requires VNC
 * authentication, then behaves by port:
 *
 * - echo port: sends back every byte it receives (idle sessions send nothing; the round-trip
 *   test sends 10-byte FramebufferUpdateRequests and gets the same 10 bytes back);
 * - stream port: on each FramebufferUpdateRequest, sends `width` MiB of framebuffer data as
 *   FramebufferUpdates of one 1024x256 Raw rectangle (1 MiB of pixels + 16 header bytes each).
 *
 * Every contender reaches the same ports and the same handshake: our proxy authenticates to it
 * on the browser's behalf; the relays (websockify, the minimal ws relay) and direct TCP carry the
 * client's own RFB handshake, VNC authentication included, through to it.
 */
import net from 'node:net';
import { once } from 'node:events';
import {
  ByteReader, RGB888_PIXEL_FORMAT, SecurityType, encodeFramebufferUpdateHeader, encodeRectangleHeader, encodeServerInit, serverHandshake,
} from '../src/rfb/index.js';
import { announce, childArgs, serveIpc } from './lib/child-ipc.js';
import { STREAM_UNIT_BYTES } from './lib/rfb-session.js';

export interface BackendArgs {
  password: string;
}

/** RFC 6143 7.5.3: FramebufferUpdateRequest is 10 bytes. */
const FBUR_LENGTH = 10;

const unit = (() => {
  const head = Buffer.concat([
    encodeFramebufferUpdateHeader(1),
    encodeRectangleHeader({ x: 0, y: 0, width: 1024, height: 256, encoding: 0 }),
  ]);
  const out = Buffer.alloc(STREAM_UNIT_BYTES, 0x5a);
  head.copy(out, 0);
  return out;
})();

const { password } = childArgs<BackendArgs>();
let open = 0;

async function handshake(sock: net.Socket): Promise<ByteReader | null> {
  const reader = new ByteReader({ maxReadLength: 64 * 1024 });
  sock.on('data', (d: Buffer) => reader.push(d));
  sock.on('close', () => reader.end());
  try {
    await serverHandshake(reader, (b) => void sock.write(b), {
      version: '3.8', securityTypes: [SecurityType.VncAuthentication], password, signal: AbortSignal.timeout(60_000),
    });
  } catch {
    sock.destroy();
    return null;
  }
  sock.write(encodeServerInit({ width: 1024, height: 768, pixelFormat: RGB888_PIXEL_FORMAT, name: 'bench' }));
  sock.removeAllListeners('data');
  return reader;
}

function accept(sock: net.Socket, mode: 'echo' | 'stream'): void {
  open++;
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  sock.once('close', () => open--);
  void handshake(sock).then((reader) => {
    if (!reader) return;
    const rest = reader.takeRemainder();
    if (mode === 'echo') {
      sock.on('data', (d: Buffer) => void sock.write(d));
      if (rest.length > 0) sock.write(rest);
      return;
    }
    let pending = rest;
    let streaming = false;
    const onData = (d: Buffer): void => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      while (pending.length >= FBUR_LENGTH) {
        const mib = pending.readUInt16BE(6);
        pending = pending.subarray(FBUR_LENGTH);
        if (!streaming) void stream(sock, mib).finally(() => (streaming = false));
        streaming = true;
      }
    };
    sock.on('data', onData);
    if (rest.length > 0) onData(Buffer.alloc(0));
  });
}

/** Writes `mib` units, waiting for 'drain' whenever the socket's buffer is full. */
async function stream(sock: net.Socket, mib: number): Promise<void> {
  for (let i = 0; i < mib && !sock.destroyed; i++) {
    if (!sock.write(unit)) await Promise.race([once(sock, 'drain'), once(sock, 'close')]);
  }
}

async function listen(mode: 'echo' | 'stream'): Promise<net.Server> {
  // A deep backlog: thousands of sessions are opened in bursts.
  const server = net.createServer((s) => accept(s, mode));
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  await once(server, 'listening');
  return server;
}

const echo = await listen('echo');
const streamServer = await listen('stream');
serveIpc({ count: () => ({ open }) }, async () => {
  echo.close();
  streamServer.close();
});
announce({
  echoPort: (echo.address() as net.AddressInfo).port,
  streamPort: (streamServer.address() as net.AddressInfo).port,
});
