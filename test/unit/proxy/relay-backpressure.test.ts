/**
 * The relay under both back-pressures at once: a browser that stops reading and a recorder that
 * is behind. Whichever lets go last, the backend is read again, and the bytes the browser got and
 * the bytes recorded are the backend's stream exactly (nothing dropped, repeated or reordered).
 * The session runs against a real WebSocket and a real TCP backend; its recorder is a stand-in
 * whose "behind" the test sets (as the recording worker's queue does when a flush takes it past
 * its bound, with no read of this session to hear it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import type { VncConnection } from '../../../src/backends/types.js';
import { systemClock } from '../../../src/clock.js';
import { silentLogger } from '../../../src/log.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { ConsoleSession } from '../../../src/proxy/console-session.js';
import type { SessionTap } from '../../../src/recording/recording-service.js';
import { ByteReader, RGB888_PIXEL_FORMAT, clientHandshake, type ClientMessage } from '../../../src/rfb/index.js';

/** A recorder whose state the test sets: it keeps what it is given, and says it is behind when told. */
class StandInTap implements SessionTap {
  readonly recordingId = 'stand-in';
  behind = false;
  readonly recorded: Buffer[] = [];
  private waiters: Array<() => void> = [];
  started(): void {}
  server(bytes: Buffer): boolean {
    this.recorded.push(Buffer.from(bytes));
    return !this.behind;
  }
  whenCaughtUp(cb: () => void): void {
    if (this.behind) this.waiters.push(cb);
    else queueMicrotask(cb);
  }
  /** Caught up: every waiter is called back. */
  catchUp(): void {
    this.behind = false;
    const ws = this.waiters;
    this.waiters = [];
    for (const cb of ws) cb();
  }
  allowsEncoding(): boolean {
    return true;
  }
  client(_m: ClientMessage): void {}
  ended(): void {}
}

/** A stream the relay does not parse past its first message: a FramebufferUpdate type byte, then a pattern. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  b[0] = 0;
  return b;
}

/** Polls `f` until it holds (a hang fails the test by its own timeout). */
async function until(f: () => boolean): Promise<void> {
  while (!f()) await sleep(20);
}

/** Until `f()` has stopped changing for a few polls (the relay stopped reading). */
async function settled(f: () => number): Promise<void> {
  let last = -1;
  let same = 0;
  while (same < 5) {
    const v = f();
    same = v === last ? same + 1 : 0;
    last = v;
    await sleep(50);
  }
}

test('a browser that catches up while the recorder is behind: the backend is read again once the recorder calls back; browser and recording get the stream exactly', { timeout: 60_000 }, async () => {
  const stream = pattern(24 * 1024 * 1024);
  const tap = new StandInTap();
  let backendSock: net.Socket | null = null;
  const backend = net.createServer((s) => {
    backendSock = s;
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  let session: ConsoleSession | null = null;
  let established: () => void = () => undefined;
  const isEstablished = new Promise<void>((resolve) => (established = resolve));
  wss.on('connection', (ws) => {
    const openBackend = async (): Promise<VncConnection> => {
      const sock = net.connect((backend.address() as net.AddressInfo).port, '127.0.0.1');
      await new Promise((resolve) => sock.once('connect', resolve));
      sock.pause();
      return {
        kind: 'vnc', stream: sock, leftover: Buffer.alloc(0),
        serverInit: { width: 64, height: 64, pixelFormat: { ...RGB888_PIXEL_FORMAT }, name: 'x' },
        info: { address: 'test', tls: null, auth: 'none', rfbVersion: '3.8' },
      };
    };
    session = new ConsoleSession(ws, {
      id: 's1', serverId: 'srv', projectId: 'p', serverName: 'relay', backend: 'test', tokenRef: 'ref', tokenIssuedAt: 0, clientAddress: '127.0.0.1',
    }, openBackend, { handshakeTimeoutMs: 10_000, maxMessageBytes: 1 << 20, tap }, {
      onEstablished: () => established(),
      onClosed: () => undefined,
    }, systemClock, silentLogger());
    void session.start();
  });

  const port = (wss.address() as net.AddressInfo).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary'], { perMessageDeflate: false });
  const reader = new ByteReader({ maxReadLength: 64 * 1024 });
  const got: Buffer[] = [];
  let gotBytes = 0;
  let sink: (b: Buffer) => void = (b) => reader.push(b);
  ws.on('message', (d) => sink(d as Buffer));
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    await clientHandshake(reader, (b) => ws.send(b), {});
    await isEstablished;
    sink = (b) => {
      got.push(Buffer.from(b));
      gotBytes += b.length;
    };
    // The browser stops reading; the backend sends far more than the relay holds for it.
    ws.pause();
    await until(() => backendSock !== null);
    backendSock!.write(stream);
    const s = session as unknown as ConsoleSession;
    await settled(() => s.bytesToClient);
    assert.ok(s.bytesToClient < stream.length, 'the relay kept reading a browser that does not read');
    // The recorder falls behind (a flush took its queue past the bound), then the browser reads
    // everything the relay sent: the relay must not read on yet...
    tap.behind = true;
    ws.resume();
    await until(() => gotBytes === s.bytesToClient);
    await settled(() => s.bytesToClient);
    assert.ok(s.bytesToClient < stream.length, 'the relay read on while its recorder was behind');
    // ...and once the recorder catches up, it must.
    tap.catchUp();
    await until(() => gotBytes === stream.length);
    assert.ok(Buffer.concat(got).equals(stream), 'the browser got the backend\'s stream exactly');
    assert.ok(Buffer.concat(tap.recorded).equals(stream), 'the recording holds the backend\'s stream exactly');
  } finally {
    ws.terminate();
    (session as ConsoleSession | null)?.close(CloseCode.Normal, 'done');
    wss.close();
    backend.close();
    (backendSock as net.Socket | null)?.destroy();
  }
});
