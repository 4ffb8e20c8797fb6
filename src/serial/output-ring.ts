/**
 * The last bytes of a serial console's output (1 MiB by default), addressed by absolute byte
 * offsets: `endOffset` counts every byte the port ever sent, so a reader's cursor (the offset it
 * has read up to) stays meaningful while older bytes fall out of the ring.
 */

/** The most a serial console's output keeps. */
export const SERIAL_OUTPUT_BYTES = 1024 * 1024;

export interface OutputSlice {
  /** The bytes from `start` to `end`. */
  readonly data: Buffer;
  /** Absolute offset of the first byte of `data`. */
  readonly start: number;
  /** Absolute offset just past the last byte (the cursor to read what is new next time). */
  readonly end: number;
  /** Bytes between the cursor asked for and `start` that were no longer kept. */
  readonly missed: number;
}

export class OutputRing {
  private chunks: Buffer[] = [];
  private length = 0;
  private end: number;

  constructor(readonly capacity = SERIAL_OUTPUT_BYTES, initial?: { endOffset: number; data: Buffer }) {
    this.end = 0;
    if (initial) {
      this.end = initial.endOffset - initial.data.length;
      this.append(initial.data);
    }
  }

  get endOffset(): number {
    return this.end;
  }

  get startOffset(): number {
    return this.end - this.length;
  }

  append(b: Buffer): void {
    if (b.length === 0) return;
    this.end += b.length;
    if (b.length >= this.capacity) {
      this.chunks = [Buffer.from(b.subarray(b.length - this.capacity))];
      this.length = this.capacity;
      return;
    }
    this.chunks.push(b);
    this.length += b.length;
    while (this.length > this.capacity) {
      const first = this.chunks[0]!;
      const over = this.length - this.capacity;
      if (first.length <= over) {
        this.chunks.shift();
        this.length -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.length -= over;
      }
    }
    // Many small reads (a serial port sends a few bytes at a time) become one buffer now and then.
    if (this.chunks.length > 256) this.chunks = [Buffer.concat(this.chunks, this.length)];
  }

  /** Everything kept. */
  snapshot(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** What is kept from `cursor` on (from the oldest kept byte when the cursor is older, or absent). */
  since(cursor?: number): OutputSlice {
    const all = this.snapshot();
    const start = this.startOffset;
    if (cursor === undefined || cursor <= start) return { data: all, start, end: this.end, missed: cursor === undefined ? 0 : start - cursor };
    if (cursor >= this.end) return { data: Buffer.alloc(0), start: this.end, end: this.end, missed: 0 };
    return { data: all.subarray(cursor - start), start: cursor, end: this.end, missed: 0 };
  }
}

/**
 * The last `n` lines of `b` (Nova's and Huawei's `length`): a line ends at `\n`; a last line
 * without one counts as a line. `n` of 0 gives nothing.
 */
export function lastLines(b: Buffer, n: number): Buffer {
  if (n <= 0 || b.length === 0) return Buffer.alloc(0);
  let i = b.length;
  // A trailing newline ends the last line; it does not start another.
  if (b[i - 1] === 0x0a) i--;
  let seen = 0;
  while (i > 0) {
    const j = b.lastIndexOf(0x0a, i - 1);
    if (j < 0) return b;
    seen++;
    if (seen === n) return b.subarray(j + 1);
    i = j;
  }
  return b;
}
