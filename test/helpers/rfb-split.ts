/**
 * Ways to cut a byte string into chunks, for the house rule that every parser is fed its input at
 * every split point and byte by byte.
 */

/** One way of delivering a byte string. */
export interface Chunking {
  label: string;
  chunks: Buffer[];
}

/** The whole buffer, every two-piece split, and one byte at a time. */
export function* chunkings(buf: Buffer): Generator<Chunking> {
  yield { label: 'whole', chunks: [buf] };
  for (let i = 1; i < buf.length; i++) {
    yield { label: `split at ${i}`, chunks: [Buffer.from(buf.subarray(0, i)), Buffer.from(buf.subarray(i))] };
  }
  if (buf.length > 1) yield { label: 'byte by byte', chunks: [...buf].map((b) => Buffer.from([b])) };
}

/** Lets pending promise callbacks and I/O callbacks run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
