/**
 * A hostile VNC server in its own process (forked by hostile-vnc.ts): one listening port per
 * stage at which it starts to flood. It speaks valid RFB 3.8 with security type None, and floods
 * with valid FramebufferUpdates (1 MiB Raw rectangles) as fast as its peer takes them: it waits
 * for 'drain', so its own memory stays small and all the pressure is on its peer.
 *
 * Stages (see {@link HOSTILE_STAGES}):
 * - `pipelined`: its whole handshake and the flood at once, without reading a byte (before our
 *   ProtocolVersion is answered);
 * - `security`: waits for the client's version and security type, then SecurityResult,
 *   ServerInit and the flood without waiting for ClientInit;
 * - `serverinit`: a complete handshake, then the flood at once after ServerInit;
 * - `relay`: a complete handshake, then the flood after the client's first message;
 * - `sink`: a complete handshake, then it stops reading (the client's messages pile up in front of it).
 */
import net from 'node:net';
import { once } from 'node:events';
import {
  ByteReader, RGB888_PIXEL_FORMAT, encodeFramebufferUpdateHeader, encodeProtocolVersion, encodeRectangleHeader, encodeSecurityResult,
  encodeSecurityTypes, encodeServerInit, SecurityType,
} from '../../src/rfb/index.js';
import { drained, HOSTILE_STAGES, type HostileStage } from './hostile-vnc.js';

/** One FramebufferUpdate of one 1024x256 Raw rectangle at 32 bpp: 1 MiB of pixels. */
const UNIT = (() => {
  const head = Buffer.concat([encodeFramebufferUpdateHeader(1), encodeRectangleHeader({ x: 0, y: 0, width: 1024, height: 256, encoding: 0 })]);
  const out = Buffer.alloc(head.length + 1024 * 256 * 4, 0x5a);
  head.copy(out, 0);
  return out;
})();

const SERVER_INIT = encodeServerInit({ width: 1024, height: 768, pixelFormat: RGB888_PIXEL_FORMAT, name: 'hostile' });
const VERSION = encodeProtocolVersion('3.8');
const NONE = encodeSecurityTypes([SecurityType.None]);
const OK = encodeSecurityResult('3.8', true);

let flooded = 0;

/** Writes FramebufferUpdates until the socket closes, waiting for 'drain' when its buffer is full. */
async function flood(sock: net.Socket): Promise<void> {
  while (!sock.destroyed) {
    flooded += UNIT.length;
    if (!sock.write(UNIT)) await drained(sock);
  }
}

async function play(sock: net.Socket, stage: HostileStage): Promise<void> {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  const reader = new ByteReader({ maxReadLength: 64 * 1024 });
  sock.on('data', (d: Buffer) => reader.push(d));
  sock.on('close', () => reader.end());
  const signal = AbortSignal.timeout(60_000);
  try {
    if (stage === 'pipelined') {
      sock.pause();
      sock.write(Buffer.concat([VERSION, NONE, OK, SERVER_INIT]));
      return await flood(sock);
    }
    sock.write(VERSION);
    await reader.readExactly(12, { signal });
    sock.write(NONE);
    await reader.readExactly(1, { signal });
    if (stage === 'security') {
      sock.write(Buffer.concat([OK, SERVER_INIT]));
      return await flood(sock);
    }
    sock.write(OK);
    await reader.readExactly(1, { signal });
    sock.write(SERVER_INIT);
    if (stage === 'serverinit') return await flood(sock);
    if (stage === 'sink') {
      // Never reads again: what the client sends stays in the kernel's buffers and the proxy's.
      sock.removeAllListeners('data');
      sock.pause();
      return;
    }
    await reader.readExactly(1, { signal });
    await flood(sock);
  } catch {
    sock.destroy();
  }
}

const servers = await Promise.all(HOSTILE_STAGES.map(async (stage) => {
  const server = net.createServer((s) => void play(s, stage));
  server.listen({ host: '127.0.0.1', port: 0, backlog: 512 });
  await once(server, 'listening');
  return [stage, (server.address() as net.AddressInfo).port] as const;
}));

process.on('message', (m) => {
  if ((m as { cmd?: string }).cmd === 'flooded') process.send?.({ flooded });
});
// No orphan: the process ends with its parent's IPC channel.
process.on('disconnect', () => process.exit(0));
process.send?.({ ports: Object.fromEntries(servers) });
