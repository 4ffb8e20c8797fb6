/**
 * The recording file: one per recorded session, append only, sealed at rest.
 *
 *   file   = MAGIC "ECSREC1\n", u16 header length, header JSON {"v":1,"id"}, chunk*
 *   chunk  = u32 length, iv (12), GCM tag (16), ciphertext   (AES-256-GCM, the recording's data
 *            key, AAD "<id>:<chunk index>": chunks cannot be moved, swapped or edited unseen)
 *   plain  = record*;  record = u8 type, u32 ms since the start, u32 length, payload
 *
 * Each chunk extends a digest chain (sha256 of the previous link and the chunk's length, nonce and
 * GCM tag: the tag authenticates the chunk's bytes under the recording's key) whose last link and
 * length the store keeps, so a file cut short, or one whose chunks were replaced, shows. A process
 * killed mid-session leaves every chunk written before it: the file plays up to the last flush.
 *
 * The proxy's recorders write through one worker thread per process (recording-channel.ts,
 * recording-worker.ts); {@link RecordingWriter} writes one file from the calling thread (tools,
 * tests). Both seal with {@link sealChunk}.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { ProtocolError } from '../errors.js';

export const RECORDING_MAGIC = Buffer.from('ECSREC1\n', 'latin1');
/** A batch is sealed once this much is buffered (or at the flush interval). */
export const FLUSH_BYTES = 1024 * 1024;
/** A chunk longer than this is not ours. */
const MAX_CHUNK = 64 * 1024 * 1024;

/** What a record holds. */
export const RecordType = {
  /** The ServerInit the browser received (its desktop name is the inventory's): playback starts from it. */
  ServerInit: 0,
  /** Bytes the server sent after the handshake, as relayed to the browser. */
  ServerBytes: 1,
  /** A PointerEvent (6 bytes as sent). */
  Pointer: 2,
  /** A KeyEvent or QEMU extended key event (only when the policy records keystrokes). */
  Key: 3,
  /** ClientCutText: the text the browser put on the server's clipboard. */
  ClientCutText: 4,
  /** The session ended: JSON {"reason"}. */
  End: 5,
} as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_HEADER = 9;
/**
 * Before each record in a staging buffer of the recording worker: u8 pad, pad bytes (0-7), u32
 * slot; then the record (its header and payload).
 */
export const STAGED_HEADER = 1 + 4 + RECORD_HEADER;

/** The next link: sha256 of the previous one and the chunk's length, nonce and tag (its first 32 bytes). */
export function link(previous: Buffer, chunk: Buffer): Buffer {
  return createHash('sha256').update(previous).update(chunk.subarray(0, 32)).digest();
}

/** A sealed chunk: its first 32 bytes (length, nonce, tag) and its ciphertext, in pieces. */
export interface SealedChunk {
  readonly head: Buffer;
  readonly body: Buffer[];
  /** Bytes of head and body. */
  readonly length: number;
}

/**
 * Seals records (`parts`, concatenated) as chunk `index` of recording `id`. The parts are
 * encrypted one by one, never joined: a batch of the relay's buffers is not copied first.
 */
export function sealChunk(key: Buffer, id: string, index: number, parts: readonly Buffer[]): SealedChunk {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(`${id}:${index}`, 'utf8'));
  const body: Buffer[] = [];
  let n = 0;
  for (const p of parts) {
    const out = c.update(p);
    if (out.length > 0) {
      body.push(out);
      n += out.length;
    }
  }
  const last = c.final();
  if (last.length > 0) {
    body.push(last);
    n += last.length;
  }
  const head = Buffer.allocUnsafe(32);
  head.writeUInt32BE(12 + 16 + n, 0);
  iv.copy(head, 4);
  c.getAuthTag().copy(head, 16);
  return { head, body, length: 32 + n };
}

/** The first link of a recording's digest chain. */
export function chainStart(id: string): Buffer {
  return createHash('sha256').update(`ecs-console recording ${id}`, 'utf8').digest();
}

/** The file's header (magic and JSON), written before its first chunk. */
export function headerOf(id: string): Buffer {
  const json = Buffer.from(JSON.stringify({ v: 1, id }), 'utf8');
  const out = Buffer.alloc(RECORDING_MAGIC.length + 2 + json.length);
  RECORDING_MAGIC.copy(out, 0);
  out.writeUInt16BE(json.length, RECORDING_MAGIC.length);
  json.copy(out, RECORDING_MAGIC.length + 2);
  return out;
}

export interface WriterProgress {
  readonly bytes: number;
  readonly chunks: number;
  readonly digest: string;
  readonly durationMs: number;
}

/**
 * Appends sealed chunks to one recording file from the calling thread. `append` only buffers
 * (references, no copy); `flush` seals what is buffered and queues its write; writes run one at a
 * time, in order.
 */
export class RecordingWriter {
  private parts: Buffer[] = [];
  private buffered = 0;
  private chunks = 0;
  private bytes = 0;
  private lastT = 0;
  private digest: Buffer;
  private queue: Promise<void> = Promise.resolve();
  private failed: Error | null = null;
  private closed = false;

  constructor(
    readonly id: string,
    private readonly key: Buffer,
    private readonly path: string,
    /** Called after each chunk is written (the store's copy of the chain). */
    private readonly onWritten: (p: WriterProgress) => void,
    private readonly onError: (e: Error) => void,
  ) {
    this.digest = chainStart(id);
  }

  /** Buffers one record; seals at FLUSH_BYTES. */
  append(type: RecordTypeValue, t: number, payload: Buffer): void {
    if (this.closed) return;
    const h = Buffer.allocUnsafe(RECORD_HEADER);
    h[0] = type;
    h.writeUInt32BE(t >>> 0, 1);
    h.writeUInt32BE(payload.length, 5);
    this.parts.push(h, payload);
    this.buffered += RECORD_HEADER + payload.length;
    this.lastT = t;
    if (this.buffered >= FLUSH_BYTES) this.flush();
  }

  get hasBuffered(): boolean {
    return this.buffered > 0;
  }

  /** Seals what is buffered into one chunk and queues its write. */
  flush(): void {
    if (this.buffered === 0 || this.failed) return;
    const parts = this.parts;
    this.parts = [];
    this.buffered = 0;
    const index = this.chunks++;
    const sealed = sealChunk(this.key, this.id, index, parts);
    const chunk = Buffer.concat([sealed.head, ...sealed.body], sealed.length);
    this.digest = link(this.digest, chunk);
    const progress = { chunks: index + 1, digest: this.digest.toString('hex'), durationMs: this.lastT };
    this.queue = this.queue.then(async () => {
      if (this.failed) return;
      try {
        // No file handle held between writes: the first write creates the file with its header,
        // the others append.
        if (this.bytes === 0) {
          const header = headerOf(this.id);
          await writeFile(this.path, Buffer.concat([header, chunk]), { flag: 'wx', mode: 0o600 });
          this.bytes = header.length;
        } else {
          await appendFile(this.path, chunk);
        }
        this.bytes += chunk.length;
        this.onWritten({ ...progress, bytes: this.bytes });
      } catch (e) {
        this.failed = e as Error;
        this.onError(e as Error);
      }
    });
  }

  /** Flushes and waits for every write. */
  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    await this.queue;
  }
}

/** How a recording read back compares with the store's digest chain. */
export type Integrity =
  /** Every chunk is the store's chain. */
  | 'verified'
  /** The store's chain matches, and chunks written after its last update follow (a node stopped before it updated the store). */
  | 'verified-with-tail'
  /** Fewer chunks than the store knows, a chain that differs, or a chunk that does not open: altered. */
  | 'tampered';

export interface ReadRecording {
  /** Every record, in order (the chunks' plaintexts, concatenated). */
  readonly records: Buffer;
  readonly chunks: number;
  readonly integrity: Integrity;
}

export interface ParsedRecord {
  readonly type: number;
  readonly t: number;
  readonly payload: Buffer;
}

/** Splits a plaintext into records (a partial record at the end is dropped). */
export function parseRecords(buf: Buffer): ParsedRecord[] {
  const out: ParsedRecord[] = [];
  for (let p = 0; p + RECORD_HEADER <= buf.length; ) {
    const len = buf.readUInt32BE(p + 5);
    if (p + RECORD_HEADER + len > buf.length) break;
    out.push({ type: buf[p]!, t: buf.readUInt32BE(p + 1), payload: buf.subarray(p + RECORD_HEADER, p + RECORD_HEADER + len) });
    p += RECORD_HEADER + len;
  }
  return out;
}

/**
 * Reads and opens a recording file, checking it against the store's chain (`expected`). A chunk
 * cut short at the end (a crash mid-write) is left out; anything else that does not fit is
 * `tampered`, and the records read up to it are returned.
 */
export async function readRecording(path: string, id: string, key: Buffer, expected: { chunks: number; digest: string }): Promise<ReadRecording> {
  const file = await readFile(path);
  const header = headerOf(id);
  if (file.length < header.length || !file.subarray(0, header.length).equals(header)) throw new ProtocolError('not the recording file of this recording');
  const plains: Buffer[] = [];
  let digest = chainStart(id);
  let index = 0;
  let tampered = false;
  let p = header.length;
  while (p + 4 <= file.length) {
    const len = file.readUInt32BE(p);
    if (len < 28 || len > MAX_CHUNK) {
      tampered = true;
      break;
    }
    if (p + 4 + len > file.length) break;
    const chunk = file.subarray(p, p + 4 + len);
    try {
      const d = createDecipheriv('aes-256-gcm', key, chunk.subarray(4, 16));
      d.setAAD(Buffer.from(`${id}:${index}`, 'utf8'));
      d.setAuthTag(chunk.subarray(16, 32));
      plains.push(Buffer.concat([d.update(chunk.subarray(32)), d.final()]));
    } catch {
      tampered = true;
      break;
    }
    digest = link(digest, chunk);
    index++;
    p += 4 + len;
    if (index === expected.chunks && digest.toString('hex') !== expected.digest) tampered = true;
  }
  if (index < expected.chunks) tampered = true;
  const integrity: Integrity = tampered ? 'tampered' : index > expected.chunks ? 'verified-with-tail' : 'verified';
  return { records: Buffer.concat(plains), chunks: index, integrity };
}
