/**
 * The relay's side of the recording worker (recording-worker.ts): one per process, shared by every
 * recorder of its proxy.
 *
 * - `append` copies a record into a staging buffer (one copy of the bytes the relay already holds,
 *   no allocation per message); a full buffer (4 MiB), or the service's flush timer, hands it to
 *   the worker: a SharedArrayBuffer shared once, handed over by its index (no copy, no transfer).
 *   Nothing is allocated before the first record, and nothing
 *   per recording beyond a slot number: the data key goes to the worker at `open`.
 * - The queue is bounded: bytes handed over and not yet written (at most 4 MiB more is staged). Past
 *   `maxQueueBytes`, `append` still takes the record (NOTE: recording integrity first: nothing the
 *   browser saw is dropped) and answers false: the relay stops reading that backend until
 *   `whenCaughtUp` calls back (the queue under half the bound). Beyond the bound the queue holds
 *   at most what the recorded sessions read before they paused (one read each).
 * - A worker that dies (or fails to start) ends recording in this process: the error is logged,
 *   records are dropped from then on, and the recordings play up to their last written chunk.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { STAGED_HEADER, type RecordTypeValue, type WriterProgress } from './recording-file.js';
import type { SlotProgress, WorkerIn, WorkerOut } from './recording-worker.js';

/** Default bound of the queue to the worker (handed over and not yet written). */
export const DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024;
/**
 * A staging buffer: a SharedArrayBuffer shared with the worker once, then handed over by its
 * index, again and again (profiled: transferring an ArrayBuffer instead cost the relay's thread
 * 0.9 ms per 1 MiB batch, 2.2 ms per 4 MiB, on this machine under load; a shared one costs a
 * small message). An idle process holds none; a busy one keeps at most FREE_STAGES spare (the
 * bound of the queue and one being filled: none is allocated again in a steady stream).
 */
export const STAGE_BYTES = 4 * 1024 * 1024;
const FREE_STAGES = 6;

/** What the channel tells the recorders (by slot). */
export interface ChannelEvents {
  progress(slot: number, p: WriterProgress): void;
  failed(slot: number, message: string): void;
}

const toProgress = (p: SlotProgress): WriterProgress => ({ bytes: p[1], chunks: p[2], digest: p[3], durationMs: p[4] });

export class RecordingChannel {
  private worker: Worker | null = null;
  private broken = false;
  private stage: Buffer | null = null;
  /** The stage's index among the shared buffers (-1: a one-off buffer, transferred). */
  private stageIndex = -1;
  private used = 0;
  /** Shared staging buffers by index (undefined: forgotten), and the free ones. */
  private readonly shared: Array<Buffer | undefined> = [];
  private free: number[] = [];
  /** Bytes handed to the worker and not yet written. */
  private inFlight = 0;
  private nextSlot = 1;
  private waiters: Array<() => void> = [];
  private readonly closing = new Map<number, (p: WriterProgress | null) => void>();
  private heapReply: ((n: number) => void) | null = null;

  constructor(
    private readonly events: ChannelEvents,
    private readonly log: Logger,
    private readonly maxQueueBytes = DEFAULT_MAX_QUEUE_BYTES,
  ) {}

  /** A new recording: its slot (the worker holds its key and file from now on). */
  open(id: string, key: Buffer, path: string): number {
    const slot = this.nextSlot++;
    this.post({ op: 'open', slot, id, key, path });
    return slot;
  }

  /** True while the queue is past its bound (the relay pauses recorded backends). */
  get behind(): boolean {
    return this.inFlight > this.maxQueueBytes;
  }

  /**
   * Stages one record of `slot`. False: the queue is past its bound (the record was taken all the
   * same); the caller should stop reading until {@link whenCaughtUp}.
   */
  append(slot: number, type: RecordTypeValue, t: number, payload: Buffer): boolean {
    if (this.broken) return true;
    const need = STAGED_HEADER + 7 + payload.length;
    if (this.stage && this.used + need > this.stage.length) this.flush();
    const b = this.stage ?? this.newStage(need);
    // The payload lands at the same offset modulo 8 as it has in its own buffer: V8 copies into
    // a SharedArrayBuffer word by word only when both ends are 8-aligned, byte by byte otherwise
    // (measured here: 0.07 vs 0.5-0.6 ms per MB, the relay thread's largest cost of recording).
    const pad = (((payload.byteOffset - this.used - STAGED_HEADER) % 8) + 8) % 8;
    b[this.used] = pad;
    let o = this.used + 1 + pad;
    o = b.writeUInt32BE(slot, o);
    b[o] = type;
    o = b.writeUInt32BE(t >>> 0, o + 1);
    o = b.writeUInt32BE(payload.length, o);
    payload.copy(b, o);
    this.used = o + payload.length;
    if (this.used >= STAGE_BYTES) this.flush();
    return !this.behind;
  }

  /** Calls `cb` once when the queue is under half its bound. */
  whenCaughtUp(cb: () => void): void {
    if (!this.behind || this.broken) queueMicrotask(cb);
    else this.waiters.push(cb);
  }

  /** Hands what is staged to the worker. */
  flush(): void {
    const b = this.stage;
    if (!b || this.used === 0) return;
    const len = this.used;
    const index = this.stageIndex;
    this.stage = null;
    this.used = 0;
    this.inFlight += len;
    if (index >= 0) {
      this.post({ op: 'batch', index, len });
    } else {
      // allocUnsafeSlow: an ArrayBuffer of its own, never a SharedArrayBuffer.
      const buf = b.buffer as ArrayBuffer;
      this.post({ op: 'batch', buf, len }, [buf]);
    }
  }

  /** A staging buffer: a free shared one, a new shared one, or (a record larger than one) a one-off. */
  private newStage(need: number): Buffer {
    this.used = 0;
    if (need > STAGE_BYTES) {
      this.stage = Buffer.allocUnsafeSlow(need);
      this.stageIndex = -1;
      return this.stage;
    }
    let index = this.free.pop();
    if (index === undefined) {
      const sab = new SharedArrayBuffer(STAGE_BYTES);
      index = this.shared.length;
      this.shared.push(Buffer.from(sab));
      this.post({ op: 'share', index, sab });
    }
    this.stage = this.shared[index]!;
    this.stageIndex = index;
    return this.stage;
  }

  /** Hands over what is staged, then ends `slot`: resolves with its last progress (null: nothing written). */
  close(slot: number): Promise<WriterProgress | null> {
    if (this.broken) return Promise.resolve(null);
    this.flush();
    return new Promise((resolve) => {
      this.closing.set(slot, resolve);
      this.post({ op: 'close', slot });
    });
  }

  /** The worker's JS heap after a full GC (0 without a worker): the bench's memory figure counts it. */
  workerHeapUsed(): Promise<number> {
    if (!this.worker) return Promise.resolve(0);
    return new Promise((resolve) => {
      this.heapReply = resolve;
      this.post({ op: 'heap' });
    });
  }

  /** Stops the worker (after every recording was closed). */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private post(m: WorkerIn, transfer?: ArrayBuffer[]): void {
    if (this.broken) return;
    (this.worker ?? this.start()).postMessage(m, transfer);
  }

  private start(): Worker {
    const w = new Worker(new URL('./recording-worker.js', import.meta.url));
    // The process may exit with it running: stop() and the recorders' closes wait for what matters.
    w.unref();
    w.on('message', (m: WorkerOut) => this.onMessage(m));
    w.on('error', (e) => this.fail(`recording worker failed: ${e.message}`));
    w.on('exit', (code) => {
      if (this.worker === w) this.fail(`recording worker exited (code ${code})`);
    });
    this.worker = w;
    return w;
  }

  private onMessage(m: WorkerOut): void {
    switch (m.op) {
      case 'done': {
        this.inFlight -= m.len;
        if (m.index !== undefined) {
          if (this.free.length < FREE_STAGES) {
            this.free.push(m.index);
          } else {
            this.shared[m.index] = undefined;
            this.post({ op: 'forget', index: m.index });
          }
        }
        for (const p of m.progress) this.events.progress(p[0], toProgress(p));
        if (this.waiters.length > 0 && this.inFlight <= this.maxQueueBytes / 2) {
          const ws = this.waiters;
          this.waiters = [];
          for (const cb of ws) cb();
        }
        break;
      }
      case 'closed': {
        const resolve = this.closing.get(m.slot);
        this.closing.delete(m.slot);
        resolve?.(m.progress ? toProgress(m.progress) : null);
        break;
      }
      case 'failed':
        this.events.failed(m.slot, m.message);
        break;
      case 'heap':
        this.heapReply?.(m.used);
        this.heapReply = null;
        break;
    }
  }

  private fail(message: string): void {
    if (this.broken) return;
    this.broken = true;
    this.worker = null;
    this.stage = null;
    this.free = [];
    this.shared.length = 0;
    this.log.error({ error: message }, 'recording stopped on this node: its worker is gone; recordings play up to their last written chunk');
    for (const resolve of this.closing.values()) resolve(null);
    this.closing.clear();
    const ws = this.waiters;
    this.waiters = [];
    for (const cb of ws) cb();
    this.heapReply?.(0);
  }
}
