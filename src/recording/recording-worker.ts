/**
 * The recording worker: one worker thread per process seals and writes every recording of its
 * proxy (recording-channel.ts is the relay's side). Off the relay's thread: AES-256-GCM, the digest
 * chain and the file writes.
 *
 * Messages in (in order, one port):
 *   open  {slot, id, key, path}   a recording starts (nothing is written before its first records)
 *   share {index, sab}            a staging buffer the relay's side fills and hands over again and again
 *   batch {index | buf, len}      records of any recordings: (u8 pad, pad bytes, u32 slot, record)*, in shared buffer
 *                                 `index`, or in `buf` (transferred: a record too large for one)
 *   forget {index}                a shared buffer no longer used
 *   close {slot}                  the recording ended: its progress is answered, its state dropped
 *   heap  {}                      this thread's JS heap, after a full GC when exposed (the bench)
 * Messages out:
 *   done    {len, index, progress} a batch is on disk (its shared buffer free again); progress: [slot, bytes, chunks, digest, ms]*
 *   closed  {slot, progress}
 *   failed  {slot, message}       a write failed: the rest of that recording is not written
 *   heap    {used}
 *
 * Each batch becomes one chunk per recording it holds, sealed when the batch arrives (its records
 * are views into the batch: no copy), then appended to its file by file-appender.ts (whole blocks
 * with direct I/O, around the page cache; the last partial block through it). Writes run one at a
 * time in arrival order, the device's part on the thread pool, so the next batch is sealed while
 * one is written; every answer (`done`, `closed`) comes after the writes queued before it. The
 * relay learns it is behind from the `done` answers it waits for (back-pressure, see
 * recording-channel.ts).
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { FileAppender } from './file-appender.js';
import { chainStart, headerOf, link, RECORD_HEADER, sealChunk, STAGED_HEADER, type SealedChunk } from './recording-file.js';

/** One recording's state here: its key, where its chain is, how much is on disk (and sealed). */
interface Slot {
  readonly id: string;
  readonly key: Buffer;
  readonly path: string;
  digest: Buffer;
  bytes: number;
  chunks: number;
  lastT: number;
  /** Chunks sealed (written or queued: the next one's index) and the time of the last record sealed. */
  sealed: number;
  sealedT: number;
  failed: boolean;
  /** Records of the batch being read (views into it). */
  parts: Buffer[] | null;
}

export type WorkerIn =
  | { op: 'open'; slot: number; id: string; key: Uint8Array; path: string }
  | { op: 'share'; index: number; sab: SharedArrayBuffer }
  | { op: 'batch'; index?: number; buf?: ArrayBuffer; len: number }
  | { op: 'forget'; index: number }
  | { op: 'close'; slot: number }
  | { op: 'heap' };

/** [slot, bytes, chunks, digest (hex), duration ms]. */
export type SlotProgress = [number, number, number, string, number];

export type WorkerOut =
  | { op: 'done'; len: number; index?: number; progress: SlotProgress[] }
  | { op: 'closed'; slot: number; progress: SlotProgress | null }
  | { op: 'failed'; slot: number; message: string }
  | { op: 'heap'; used: number };

const slots = new Map<number, Slot>();
/** The relay's staging buffers, shared once (no copy, no transfer per batch). */
const shared: Array<Buffer | undefined> = [];
const port = parentPort!;
/** Writes the files: whole blocks around the page cache (file-appender.ts). */
const appender = new FileAppender();

function progressOf(n: number, s: Slot): SlotProgress {
  return [n, s.bytes, s.chunks, s.chunks > 0 ? s.digest.toString('hex') : '', s.lastT];
}

/** A chunk sealed and not yet written, with the time of its last record. */
interface Sealed {
  readonly n: number;
  readonly s: Slot;
  readonly chunk: SealedChunk;
  readonly lastT: number;
}

/**
 * Writes run one at a time, in the order their batches came (the appender's aligned memory is
 * reused, and every answer follows the writes before it); the next batch is sealed meanwhile, so
 * sealing and the device's write overlap.
 */
let writing: Promise<void> = Promise.resolve();
function queued(step: () => Promise<void> | void): void {
  writing = writing.then(step).catch((e: unknown) => {
    // A fault of this code, not of a write (those are answered as `failed`): this thread ends and
    // the relay's side stops recording in this process (recording-channel.ts).
    setImmediate(() => {
      throw e;
    });
  });
}

/** Seals the slot's records of this batch as its next chunk (its records are views into the batch). */
function seal(n: number, s: Slot): Sealed | null {
  const parts = s.parts!;
  s.parts = null;
  if (s.failed) return null;
  return { n, s, chunk: sealChunk(s.key, s.id, s.sealed++, parts), lastT: s.sealedT };
}

/** Appends a sealed chunk to its file (the first one creates it, with its header: never another file's). */
async function write(c: Sealed): Promise<void> {
  const s = c.s;
  if (s.failed) return;
  try {
    // No descriptor held between writes (an idle recording costs none).
    const { head, body, length } = c.chunk;
    const header = s.bytes === 0 ? headerOf(s.id) : null;
    const total = (header?.length ?? 0) + length;
    await appender.append(s.path, s.bytes, header ? [header, head, ...body] : [head, ...body], total);
    s.bytes += total;
    s.chunks++;
    s.digest = link(s.digest, head);
    s.lastT = c.lastT;
  } catch (e) {
    s.failed = true;
    port.postMessage({ op: 'failed', slot: c.n, message: (e as Error).message } satisfies WorkerOut);
  }
}

function batch(b: Buffer, len: number, index?: number): void {
  const touched: Array<[number, Slot]> = [];
  for (let p = 0; p + STAGED_HEADER <= len; ) {
    // The relay's padding (recording-channel.ts: it keeps the payload's copy word-aligned).
    p += 1 + b[p]!;
    const n = b.readUInt32BE(p);
    const size = RECORD_HEADER + b.readUInt32BE(p + 4 + 5);
    const s = slots.get(n);
    if (s && !s.failed) {
      if (!s.parts) {
        s.parts = [];
        touched.push([n, s]);
      }
      s.parts.push(b.subarray(p + 4, p + 4 + size));
      s.sealedT = b.readUInt32BE(p + 4 + 1);
    }
    p += 4 + size;
  }
  const sealed: Sealed[] = [];
  for (const [n, s] of touched) {
    const c = seal(n, s);
    if (c) sealed.push(c);
  }
  queued(async () => {
    for (const c of sealed) await write(c);
    const progress: SlotProgress[] = [];
    for (const [n, s] of touched) if (!s.failed) progress.push(progressOf(n, s));
    // Everything read from `b` is sealed and written: the relay may fill it again.
    port.postMessage({ op: 'done', len, ...(index !== undefined ? { index } : {}), progress } satisfies WorkerOut);
  });
}

port.on('message', (m: WorkerIn) => {
  switch (m.op) {
    case 'open':
      slots.set(m.slot, { id: m.id, key: Buffer.from(m.key), path: m.path, digest: chainStart(m.id), bytes: 0, chunks: 0, lastT: 0, sealed: 0, sealedT: 0, failed: false, parts: null });
      break;
    case 'share':
      shared[m.index] = Buffer.from(m.sab);
      break;
    case 'batch':
      batch(m.index !== undefined ? shared[m.index]! : Buffer.from(m.buf!, 0, m.len), m.len, m.index);
      break;
    case 'forget':
      shared[m.index] = undefined;
      break;
    case 'close': {
      const s = slots.get(m.slot);
      slots.delete(m.slot);
      // After the slot's queued writes: its last progress is what is on disk.
      queued(() => {
        if (slots.size === 0) appender.release();
        port.postMessage({ op: 'closed', slot: m.slot, progress: s && s.chunks > 0 ? progressOf(m.slot, s) : null } satisfies WorkerOut);
      });
      break;
    }
    case 'heap':
      (globalThis as { gc?: () => void }).gc?.();
      port.postMessage({ op: 'heap', used: getHeapStatistics().used_heap_size } satisfies WorkerOut);
      break;
  }
});
