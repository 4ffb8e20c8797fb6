/**
 * The player's seekable form of a finished recording (seekable.ts), built once and kept beside it.
 *
 * A finished recording is immutable, and building its seekable form costs a decode of the whole
 * recording (1.7 s for an hour): the first load builds it and writes it next to the recording, as
 * `<recording file>.seekable`; later loads, on any node sharing the recording directory, open it.
 *
 *   file  = MAGIC "ECSSEEK1\n", u16 header length, header JSON, iv (12), GCM tag (16), ciphertext
 *   header = {"v":1,"id","chunks","digest","keyframes"}   (keyframes: null when not seekable)
 *
 * - **Sealed like the recording**: it holds the screen contents. AES-256-GCM under a key derived
 *   from the recording's own data key (HKDF-SHA256, a label of its own), so it opens with whatever
 *   opens the recording: master-key rotation re-seals the data key, never changes it, so a cache
 *   built before a rotation opens after it. The associated data is the file's whole prefix (magic
 *   and header), so a header changed, a file cut short or edited, or a file of another recording
 *   does not open: it is rebuilt (and overwritten), never served.
 * - **Bound to the recording's state**: the header names the store's chunk count and digest chain;
 *   a cache is used only for a finished recording (`endedAt` set) read back `verified` with exactly
 *   those chunks. A recording still being written (or one whose node died mid-session, or
 *   tampered) gets a form built from what was read, not cached.
 * - **Built once**: concurrent requests for a recording on one node share one build (and one
 *   open of the cache). Nodes sharing the directory may each build once; each writes a temporary
 *   file and renames it over the cache, so a reader sees a whole file, never a partial one.
 * - Deleted with its recording (retention, quota); not counted in the project's quota
 *   (docs/recording.md).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { parseRecords, type ParsedRecord, type ReadRecording } from './recording-file.js';
import { seekableRecords } from './seekable.js';
import type { RecordingRecord } from './types.js';

const MAGIC = Buffer.from('ECSSEEK1\n', 'latin1');
/** Appended to the recording's file name. */
export const SEEKABLE_SUFFIX = '.seekable';
/** A temporary file of a build: `<cache file>.<12 hex>.tmp`. */
const TEMP = /\.seekable\.[0-9a-f]{12}\.tmp$/;
/** Leftovers (a build's temporary file after a crash, a cache whose recording is gone) older than this are swept. */
const LEFTOVER_MS = 3_600_000;

/** The seekable form: its records (the file's record format) and keyframe count; null when the recording's stream cannot be followed (it plays from the start). */
export type SeekableForm = { readonly records: Buffer; readonly keyframes: number } | null;

export interface SeekableResult {
  readonly form: SeekableForm;
  /** `hit`: opened from the cache; `built`: built and cached; `uncached`: built and not cached (not finished, or not verified). */
  readonly cache: 'hit' | 'built' | 'uncached';
}

interface Header {
  readonly v: 1;
  readonly id: string;
  readonly chunks: number;
  readonly digest: string;
  readonly keyframes: number | null;
}

/** The cache file of a recording. */
export function seekableCacheFile(rec: Pick<RecordingRecord, 'file'>): string {
  return `${rec.file}${SEEKABLE_SUFFIX}`;
}

/** The cache's key: derived from the recording's data key (never the data key itself). */
function cacheKey(dataKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'ecs-console seekable form v1', 32));
}

function prefixOf(h: Header): Buffer {
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.alloc(MAGIC.length + 2 + json.length);
  MAGIC.copy(out, 0);
  out.writeUInt16BE(json.length, MAGIC.length);
  json.copy(out, MAGIC.length + 2);
  return out;
}

/** The sealed cache file of `form` for recording `rec` (its chunks and digest as the store has them). */
export function sealSeekable(rec: Pick<RecordingRecord, 'id' | 'chunks' | 'digest'>, dataKey: Buffer, form: SeekableForm): Buffer {
  const prefix = prefixOf({ v: 1, id: rec.id, chunks: rec.chunks, digest: rec.digest, keyframes: form ? form.keyframes : null });
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', cacheKey(dataKey), iv);
  c.setAAD(prefix);
  const body = form ? c.update(form.records) : Buffer.alloc(0);
  const last = c.final();
  return Buffer.concat([prefix, iv, c.getAuthTag(), body, last]);
}

/**
 * Opens a cache file of recording `rec`: the form, or a reason it is not to be used (another
 * recording's or another state's, cut short, edited, not ours).
 */
export function openSeekable(file: Buffer, rec: Pick<RecordingRecord, 'id' | 'chunks' | 'digest'>, dataKey: Buffer): { form: SeekableForm } | { reason: string } {
  if (file.length < MAGIC.length + 2 || !file.subarray(0, MAGIC.length).equals(MAGIC)) return { reason: 'not a seekable form file' };
  const jsonLen = file.readUInt16BE(MAGIC.length);
  const start = MAGIC.length + 2 + jsonLen;
  if (file.length < start + 28) return { reason: 'cut short' };
  let h: Header;
  try {
    h = JSON.parse(file.subarray(MAGIC.length + 2, start).toString('utf8')) as Header;
  } catch {
    return { reason: 'header is not JSON' };
  }
  if (h === null || typeof h !== 'object' || h.v !== 1 || h.id !== rec.id || h.chunks !== rec.chunks || h.digest !== rec.digest) return { reason: 'built from another recording or state' };
  if (h.keyframes !== null && !Number.isSafeInteger(h.keyframes)) return { reason: 'bad header' };
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', cacheKey(dataKey), file.subarray(start, start + 12));
    d.setAAD(file.subarray(0, start));
    d.setAuthTag(file.subarray(start + 12, start + 28));
    plain = Buffer.concat([d.update(file.subarray(start + 28)), d.final()]);
  } catch {
    return { reason: 'does not open (altered, or sealed with another key)' };
  }
  if (h.keyframes === null) return plain.length === 0 ? { form: null } : { reason: 'bad header' };
  return { form: { records: plain, keyframes: h.keyframes } };
}

export interface SeekableCacheOptions {
  /** The recording directory (the cache files are beside the recordings). */
  readonly dir: string;
  readonly log: Logger;
  /** Whether the recording is still indexed (a build that ends after its recording was purged deletes its file). */
  exists(id: string): Promise<boolean>;
  /** Builds the form (tests count builds through it); default seekable.ts. */
  build?(records: readonly ParsedRecord[]): Promise<SeekableForm>;
}

export class SeekableCache {
  private readonly inFlight = new Map<string, Promise<SeekableResult>>();
  private readonly build: (records: readonly ParsedRecord[]) => Promise<SeekableForm>;
  private lastSweep = 0;
  #builds = 0;

  constructor(private readonly opts: SeekableCacheOptions) {
    this.build = opts.build ?? seekableRecords;
  }

  /** Forms built so far (cached or not): tests, the bench. */
  get builds(): number {
    return this.#builds;
  }

  /**
   * The seekable form of `rec`, whose records `read` were just read (and checked) with `dataKey`:
   * from its cache when it is finished, verified and cached; else built (and cached when it is
   * finished and verified). Concurrent calls for one recording share one build.
   */
  get(rec: RecordingRecord, dataKey: Buffer, read: ReadRecording): Promise<SeekableResult> {
    const cacheable = rec.endedAt !== null && rec.chunks > 0 && read.integrity === 'verified' && read.chunks === rec.chunks;
    // What was read of an uncached recording is its first `read.chunks` chunks (append only, each authenticated).
    const flight = cacheable ? `${rec.id}:${rec.digest}` : `${rec.id}@${read.chunks}:${read.integrity}`;
    const running = this.inFlight.get(flight);
    if (running) return running;
    const p = (async (): Promise<SeekableResult> => {
      const path = join(this.opts.dir, seekableCacheFile(rec));
      if (cacheable) {
        const hit = await this.load(path, rec, dataKey);
        if (hit) return { form: hit.form, cache: 'hit' };
      }
      this.#builds++;
      const form = await this.build(parseRecords(read.records));
      if (!cacheable) return { form, cache: 'uncached' };
      await this.save(path, rec, dataKey, form);
      return { form, cache: 'built' };
    })().finally(() => this.inFlight.delete(flight));
    this.inFlight.set(flight, p);
    return p;
  }

  private async load(path: string, rec: RecordingRecord, dataKey: Buffer): Promise<{ form: SeekableForm } | null> {
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log.warn({ recording: rec.id, error: (e as Error).message }, 'seekable form cache unreadable; rebuilding it');
      return null;
    }
    const o = openSeekable(file, rec, dataKey);
    if ('form' in o) return o;
    this.opts.log.warn({ recording: rec.id, reason: o.reason }, 'seekable form cache not used; rebuilding it');
    return null;
  }

  /** Writes the cache (a temporary file renamed over it); a failure is logged, and the form is served anyway. */
  private async save(path: string, rec: RecordingRecord, dataKey: Buffer, form: SeekableForm): Promise<void> {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, sealSeekable(rec, dataKey, form), { flag: 'wx', mode: 0o600 });
      await rename(tmp, path);
      // Purged while it was built: the cache goes too.
      if (!(await this.opts.exists(rec.id))) await rm(path, { force: true });
    } catch (e) {
      this.opts.log.warn({ recording: rec.id, error: (e as Error).message }, 'seekable form not cached');
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /** Deletes a recording's cache (with the recording). */
  async remove(rec: Pick<RecordingRecord, 'file'>): Promise<void> {
    await rm(join(this.opts.dir, seekableCacheFile(rec)), { force: true });
  }

  /**
   * At most once an hour (the purge calls it): deletes leftovers older than an hour, temporary
   * files of builds that did not finish (a process killed mid-write) and caches whose recording
   * file is gone. Returns how many.
   */
  async sweep(now = Date.now()): Promise<number> {
    if (now - this.lastSweep < LEFTOVER_MS) return 0;
    this.lastSweep = now;
    let names: string[];
    try {
      names = await readdir(this.opts.dir);
    } catch {
      return 0;
    }
    const present = new Set(names);
    let n = 0;
    for (const name of names) {
      const orphan = name.endsWith(SEEKABLE_SUFFIX) && !present.has(name.slice(0, -SEEKABLE_SUFFIX.length));
      if (!orphan && !TEMP.test(name)) continue;
      const p = join(this.opts.dir, name);
      try {
        if (now - (await stat(p)).mtimeMs < LEFTOVER_MS) continue;
        await rm(p, { force: true });
        n++;
      } catch {
        // Gone meanwhile.
      }
    }
    return n;
  }
}
