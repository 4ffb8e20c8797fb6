/**
 * An async reader over pushed chunks, for the handshake steps (house style: handshakes read with
 * `readExactly(n)`; message loops use a synchronous framer). Knows nothing of sockets: the owner
 * pushes what arrives and ends it when the transport closes.
 */
import { ProtocolError } from '../errors.js';

/** The peer closed (or the owner ended the reader) before the bytes asked for arrived. */
export class ConnectionClosedError extends ProtocolError {
  constructor(readonly wanted: number, readonly had: number) {
    super(`connection closed while waiting for ${wanted} bytes (had ${had})`);
  }
}

/** Options of one read. */
export interface ReadOptions {
  /** Rejects the read with the signal's reason when it aborts (e.g. `AbortSignal.timeout(ms)`). */
  signal?: AbortSignal | undefined;
}

/** Options of a {@link ByteReader}. */
export interface ByteReaderOptions {
  /** Largest single read allowed; a larger `readExactly(n)` rejects before allocating. Default 1 MiB. */
  maxReadLength?: number;
}

interface PendingRead {
  n: number;
  resolve: (buf: Buffer) => void;
  reject: (err: unknown) => void;
  /** The signal that aborts this read, if any. */
  signal: AbortSignal | undefined;
}

/** Default largest single read: 1 MiB. */
export const DEFAULT_MAX_READ_LENGTH = 1024 * 1024;

/** Buffers pushed chunks and serves exact-length reads, one at a time. */
export class ByteReader {
  private chunks: Buffer[] = [];
  /** Read position in chunks[0]. */
  private head = 0;
  private length = 0;
  private pending: PendingRead | undefined;
  private endError: Error | undefined;
  private isEnded = false;
  private readonly maxReadLength: number;
  /**
   * The signal this reader listens to: one listener for all the reads that wait with it (a
   * handshake's reads share one signal), not one added and removed per read. Dropped when the
   * reader ends or hands over its remainder, or when a read waits with another signal.
   */
  private watched: AbortSignal | undefined;
  private readonly onAbort = (): void => {
    const p = this.pending;
    if (!p || p.signal !== this.watched) return;
    this.pending = undefined;
    p.reject(p.signal!.reason);
  };

  constructor(opts: ByteReaderOptions = {}) {
    this.maxReadLength = opts.maxReadLength ?? DEFAULT_MAX_READ_LENGTH;
  }

  /** Bytes received and not read yet. */
  get bufferedLength(): number {
    return this.length;
  }

  /** Whether end() was called. */
  get ended(): boolean {
    return this.isEnded;
  }

  /** Adds bytes from the peer. Ignored after end(). */
  push(chunk: Buffer): void {
    if (this.isEnded || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    const p = this.pending;
    if (p && this.length >= p.n) {
      this.pending = undefined;
      p.resolve(this.take(p.n));
    }
  }

  /** No more bytes will come; a waiting read rejects with `err` or a ConnectionClosedError. */
  end(err?: Error): void {
    if (this.isEnded) return;
    this.isEnded = true;
    this.endError = err;
    this.unwatch();
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      p.reject(this.closedError(p.n));
    }
  }

  /** Resolves with exactly `n` bytes (a view into a received chunk when it holds them all). */
  readExactly(n: number, opts: ReadOptions = {}): Promise<Buffer> {
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new RangeError(`invalid read length ${n}`));
    // NOTE: the cap is checked before anything is allocated or awaited, so a peer-supplied length
    // can never make us reserve memory for it.
    if (n > this.maxReadLength) return Promise.reject(new ProtocolError(`read of ${n} bytes exceeds the limit of ${this.maxReadLength}`));
    if (this.pending) return Promise.reject(new Error('ByteReader: a read is already pending'));
    if (this.length >= n) return Promise.resolve(this.take(n));
    if (this.isEnded) return Promise.reject(this.closedError(n));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (signal !== undefined && signal !== this.watched) {
      this.unwatch();
      signal.addEventListener('abort', this.onAbort, { once: true });
      this.watched = signal;
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.pending = { n, resolve, reject, signal };
    });
  }

  private unwatch(): void {
    this.watched?.removeEventListener('abort', this.onAbort);
    this.watched = undefined;
  }

  /**
   * Drops everything buffered and ends the reader (a waiting read rejects): for an owner that
   * gives up on the peer, so that what the peer sent is not kept alive by whoever still holds
   * the reader.
   */
  discard(err?: Error): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
    this.end(err);
  }

  /** Reads a u8. */
  async readU8(opts?: ReadOptions): Promise<number> {
    return (await this.readExactly(1, opts)).readUInt8(0);
  }

  /** Reads a big-endian u16 (RFC 6143 7: "all multiple-byte integers are in big endian order"). */
  async readU16(opts?: ReadOptions): Promise<number> {
    return (await this.readExactly(2, opts)).readUInt16BE(0);
  }

  /** Reads a big-endian u32. */
  async readU32(opts?: ReadOptions): Promise<number> {
    return (await this.readExactly(4, opts)).readUInt32BE(0);
  }

  /** Reads a big-endian s32. */
  async readS32(opts?: ReadOptions): Promise<number> {
    return (await this.readExactly(4, opts)).readInt32BE(0);
  }

  /**
   * Removes and returns everything buffered (the bytes after the handshake, to hand to a framer or
   * a relay). Empty when nothing is buffered.
   */
  takeRemainder(): Buffer {
    if (this.pending) throw new Error('ByteReader: takeRemainder() while a read is pending');
    // The reads are over: the signal no longer holds this reader.
    this.unwatch();
    return this.take(this.length);
  }

  private closedError(n: number): Error {
    return this.endError ?? new ConnectionClosedError(n, this.length);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      this.length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      if (!c) throw new Error('ByteReader: internal length mismatch');
      const step = Math.min(n - filled, c.length - this.head);
      c.copy(out, filled, this.head, this.head + step);
      filled += step;
      this.head += step;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return out;
  }
}
