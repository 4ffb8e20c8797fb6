/**
 * A hostile VNC server in a separate process (hostile-vnc-child.ts), for memory tests and the
 * benchmark: its memory and CPU are not ours, so what the proxy's process holds is measured alone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { ByteReader, clientHandshake, encodeFramebufferUpdateRequest, encodeSetEncodings } from '../../src/rfb/index.js';

/** Where the backend starts to flood: see hostile-vnc-child.ts. */
export const HOSTILE_STAGES = ['pipelined', 'security', 'serverinit', 'relay', 'sink'] as const;
export type HostileStage = (typeof HOSTILE_STAGES)[number];

/** Resolves on the socket's 'drain' or 'close', leaving no listener behind (a flooder's wait). */
export function drained(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      sock.off('drain', done);
      sock.off('close', done);
      resolve();
    };
    sock.on('drain', done);
    sock.on('close', done);
  });
}

export interface HostileVnc {
  readonly child: ChildProcess;
  /** The listening port of each stage (127.0.0.1). */
  readonly ports: Readonly<Record<HostileStage, number>>;
  /** Bytes the backend has written so far (all sessions). */
  flooded(): Promise<number>;
  stop(): Promise<void>;
}

const CHILD = fileURLToPath(new URL('./hostile-vnc-child.js', import.meta.url));

export async function forkHostileVnc(): Promise<HostileVnc> {
  const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [first] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`the hostile VNC server exited (${String(code)}) before listening`))),
  ])) as [{ ports: Record<HostileStage, number> }];
  return {
    child,
    ports: first.ports,
    async flooded() {
      const answer = once(child, 'message');
      child.send({ cmd: 'flooded' });
      const [m] = (await answer) as [{ flooded: number }];
      return m.flooded;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** 64 KiB of valid client messages (SetEncodings [Raw], 8 bytes each): cheap for any server to take. */
const FLOOD_CHUNK = Buffer.concat(Array.from({ length: 8192 }, () => encodeSetEncodings([0])));

export interface StalledSession {
  readonly ws: WebSocket;
  /** The close code and reason the proxy sent (or 1006). */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/**
 * A browser that misbehaves the way each stage needs, through the proxy at `url`:
 * - `pipelined`, `security`, `serverinit`: sends its ProtocolVersion, then nothing (its handshake
 *   stalls while the backend floods);
 * - `relay`: completes the handshake, asks for an update, then stops reading;
 * - `sink`: completes the handshake, then sends valid messages as fast as the proxy takes them
 *   (to a backend that does not read).
 * Resolves once the browser has done its part (the flood is then under way).
 */
export async function openStalledSession(url: string, origin: string, stage: HostileStage): Promise<StalledSession> {
  const ws = new WebSocket(url, ['binary'], { origin, perMessageDeflate: false, handshakeTimeout: 10_000 });
  const reader = new ByteReader({ maxReadLength: 64 * 1024 });
  ws.on('message', (d: Buffer) => reader.push(d));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => {
    reader.end();
    resolve({ code, reason: reason.toString('utf8') });
  }));
  ws.on('error', () => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)));
    ws.once('error', reject);
  });
  const signal = AbortSignal.timeout(10_000);
  const write = (b: Buffer): void => ws.send(b, { binary: true });
  if (stage === 'pipelined' || stage === 'security' || stage === 'serverinit') {
    await reader.readExactly(12, { signal });
    write(Buffer.from('RFB 003.008\n', 'latin1'));
  } else {
    await clientHandshake(reader, write, { signal });
    if (stage === 'relay') {
      write(encodeFramebufferUpdateRequest(false, 0, 0, 1024, 768));
      // Not reading: the proxy's writes towards this browser pile up.
      ws.pause();
    } else {
      void (async () => {
        while (ws.readyState === ws.OPEN) {
          // Bounded on our side too: wait for the proxy to take what is queued.
          await new Promise<void>((resolve) => ws.send(FLOOD_CHUNK, { binary: true }, () => resolve()));
        }
      })();
    }
  }
  return { ws, closed, close: () => ws.terminate() };
}
