/**
 * The benchmark's client: opens a session the way noVNC does (WebSocket, "binary" subprotocol,
 * an Origin header) or over plain TCP, runs the RFB client handshake of src/rfb up to ServerInit,
 * then offers the two measurements: 10-byte round trips and bulk receive.
 */
import net from 'node:net';
import { WebSocket } from 'ws';
import { ByteReader, clientHandshake, encodeFramebufferUpdateRequest } from '../../src/rfb/index.js';

/** Where a session goes. `password` is given when the client itself must do VNC authentication. */
export type Target =
  | { kind: 'ws'; url: string; origin: string; password?: string }
  | { kind: 'tcp'; port: number; password: string };

/** RFC 6143 7.5.3: a FramebufferUpdateRequest is 10 bytes, the size of the round-trip message. */
export const PING = encodeFramebufferUpdateRequest(true, 0, 0, 1, 1);

/** What the stream backend sends per MiB asked: FramebufferUpdate header, rectangle header, 1 MiB of pixels. */
export const STREAM_UNIT_BYTES = 4 + 12 + 1024 * 256 * 4;

export class BenchSession {
  private sink: (b: Buffer) => void;
  private closeCb: (() => void) | null = null;

  private constructor(
    private readonly send: (b: Buffer) => void,
    private readonly kill: () => void,
    reader: ByteReader,
  ) {
    this.sink = (b) => reader.push(b);
  }

  /** Opens and completes the handshake; rejects on refusal, failure or timeout. */
  static async open(t: Target, timeoutMs = 30_000): Promise<BenchSession> {
    const reader = new ByteReader({ maxReadLength: 64 * 1024 });
    let session: BenchSession;
    const signal = AbortSignal.timeout(timeoutMs);
    if (t.kind === 'ws') {
      const ws = new WebSocket(t.url, ['binary'], { origin: t.origin, perMessageDeflate: false, handshakeTimeout: timeoutMs });
      session = new BenchSession((b) => ws.send(b), () => ws.terminate(), reader);
      // Listening at once: the server speaks first, possibly in the same read as the 101 answer.
      ws.on('message', (d) => session.sink(d as Buffer));
      ws.on('close', () => session.onClose(reader));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.on('error', () => ws.terminate());
    } else {
      const sock = net.connect({ host: '127.0.0.1', port: t.port });
      sock.setNoDelay(true);
      session = new BenchSession((b) => void sock.write(b), () => sock.destroy(), reader);
      sock.on('data', (d: Buffer) => session.sink(d));
      sock.on('close', () => session.onClose(reader));
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', () => resolve());
        sock.once('error', reject);
      });
      sock.on('error', () => sock.destroy());
    }
    try {
      await clientHandshake(reader, (b) => session.send(b), { password: t.password, signal });
    } catch (e) {
      session.close();
      throw e;
    }
    const rest = reader.takeRemainder();
    session.sink = () => {};
    if (rest.length > 0) throw new Error('unexpected bytes after ServerInit');
    return session;
  }

  private onClose(reader: ByteReader): void {
    reader.end();
    this.closeCb?.();
  }

  close(): void {
    this.kill();
  }

  /** `n` sequential round trips of a 10-byte message; each one's time in microseconds. */
  async roundTrips(n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await this.expect(PING.length, () => this.send(PING));
      out.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return out;
  }

  /** Asks the stream backend for `mib` units and resolves with the ms until `bytes` arrived. */
  async bulk(mib: number, bytes: number): Promise<number> {
    const t0 = process.hrtime.bigint();
    await this.expect(bytes, () => this.send(encodeFramebufferUpdateRequest(false, 0, 0, mib, 1)));
    return Number(process.hrtime.bigint() - t0) / 1e6;
  }

  private expect(bytes: number, start: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let got = 0;
      this.closeCb = () => reject(new Error(`connection closed after ${got} of ${bytes} bytes`));
      this.sink = (b) => {
        got += b.length;
        if (got >= bytes) {
          this.sink = () => {};
          this.closeCb = null;
          resolve();
        }
      };
      start();
    });
  }
}

/** Runs `fn(0..n-1)` with at most `concurrency` at once; failures are returned, not thrown. */
export async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<Array<T | Error>> {
  const out = new Array<T | Error>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      try {
        out[i] = await fn(i);
      } catch (e) {
        out[i] = e instanceof Error ? e : new Error(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}
