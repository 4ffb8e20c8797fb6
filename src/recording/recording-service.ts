/**
 * Recording policies, recorders for the proxy's sessions, reading recordings back, and the purge.
 *
 * - Policy: off unless set; a server's own policy wins over its project's. `setPolicy` is what the
 *   CLI (`ecs-console recording policy ...`) calls, and what an admin API may call.
 * - Recorder: one per recorded session ({@link SessionTap}); records the ServerInit the browser got,
 *   every byte the server sent after it (with its time), pointer events and clipboard text from the
 *   browser, and key events only when the policy says so.
 * - Files: `<recordingDir>/<id>.ecsrec` (recording-file.ts), each with its own data key, sealed
 *   with the master key in the store.
 * - Purge: recordings past their retention, then the oldest of projects over their quota; a
 *   recording's seekable form (seekable-cache.ts) goes with it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { ConsoleError, NotFoundError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClientMessage } from '../rfb/index.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { uuid } from '../util/ids.js';
import { RecordingChannel } from './recording-channel.js';
import { RecordType, readRecording, type ReadRecording, type WriterProgress } from './recording-file.js';
import { recordableEncoding } from './seekable.js';
import { SeekableCache, type SeekableResult } from './seekable-cache.js';
import type { PolicyScope, RecordingFilter, RecordingPolicy, RecordingRecord, RecordingStore } from './types.js';

/** What a console session tells its recorder (src/proxy calls these; it knows nothing else of recording). */
export interface SessionTap {
  readonly recordingId: string;
  /** The ServerInit sent to the browser: the relay starts. */
  started(serverInit: Buffer): void;
  /**
   * Bytes the server sent, as relayed to the browser (kept by reference until copied: the caller
   * does not change them). False: the recorder is behind; the relay stops reading the server
   * until {@link whenCaughtUp} calls back (nothing is dropped from the recording).
   */
  server(bytes: Buffer): boolean;
  /** Calls `cb` once the recorder has caught up (see `server`). */
  whenCaughtUp(cb: () => void): void;
  /** True while the recorder is behind. */
  readonly behind: boolean;
  /** Whether the server may be offered `encoding` (SetEncodings): the ones a recording can be made seekable in. */
  allowsEncoding(encoding: number): boolean;
  /** A message from the browser, as relayed to the server. */
  client(m: ClientMessage): void;
  /** The session ended. */
  ended(reasonKey: string): void;
}

export interface RecordingConfig {
  /** Absolute directory of the files. */
  readonly dir: string;
  readonly flushMs: number;
  readonly nodeId: string;
  /** Bound of the queue to the recording worker (bytes); default DEFAULT_MAX_QUEUE_BYTES. */
  readonly maxQueueBytes?: number;
}

export interface PolicyInput {
  readonly scope: PolicyScope;
  readonly scopeId: string;
  readonly enabled: boolean;
  readonly keystrokes?: boolean;
  readonly retentionDays?: number;
  readonly quotaBytes?: number | null;
  readonly actor?: string | null;
}

/** Resolves a policy's project and checks what it names exists. */
export interface PolicyTargets {
  projectOf(scope: PolicyScope, scopeId: string): Promise<string | null>;
}

export const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;

/** The policy that applies: the server's own, else its project's, else none. */
export function effectivePolicy(policies: readonly RecordingPolicy[], serverId: string): RecordingPolicy | null {
  return policies.find((p) => p.scope === 'server' && p.scopeId === serverId) ?? policies.find((p) => p.scope === 'project') ?? null;
}

export class RecordingService {
  private readonly active = new Set<SessionRecorder>();
  /** Recorders by their slot in the channel (the worker's progress and failures find them). */
  private readonly bySlot = new Map<number, SessionRecorder>();
  private timer: NodeJS.Timeout | null = null;
  private dirReady = false;
  /** @internal the recording worker's channel (created with the first recording). */
  readonly channel: RecordingChannel;
  /** The player's seekable forms of finished recordings, kept beside them. */
  readonly seekable: SeekableCache;

  constructor(
    readonly store: RecordingStore,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    readonly config: RecordingConfig,
    private readonly log: Logger,
    private readonly targets?: PolicyTargets,
  ) {
    this.channel = new RecordingChannel({
      progress: (slot, p) => this.bySlot.get(slot)?.progress(p),
      failed: (slot, message) => {
        const r = this.bySlot.get(slot);
        log.error({ recording: r?.recordingId, error: message }, 'recording write failed; the rest of this session is not recorded');
      },
    }, log, config.maxQueueBytes);
    this.seekable = new SeekableCache({ dir: config.dir, log, exists: async (id) => (await store.getRecording(id)) !== null });
  }

  // ---- policies

  /** Sets (replaces) the policy of a project or a server; checks what it names exists. */
  async setPolicy(input: PolicyInput): Promise<RecordingPolicy> {
    const retentionDays = input.retentionDays ?? DEFAULT_RETENTION_DAYS;
    if (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > 3650) throw new ValidationError('retention must be 1 to 3650 days', 'retentionDays');
    const quota = input.quotaBytes ?? null;
    if (quota !== null && (!Number.isSafeInteger(quota) || quota < 1)) throw new ValidationError('quota must be a positive number of bytes', 'quotaBytes');
    if (quota !== null && input.scope !== 'project') throw new ValidationError('a quota is set on a project\'s policy', 'quotaBytes');
    const projectId = this.targets ? await this.targets.projectOf(input.scope, input.scopeId) : input.scopeId;
    if (!projectId) throw new NotFoundError(input.scope, input.scopeId);
    const p: RecordingPolicy = {
      scope: input.scope, scopeId: input.scopeId, projectId, enabled: input.enabled, keystrokes: input.keystrokes ?? false,
      retentionDays, quotaBytes: quota, updatedAt: this.clock.now(), updatedBy: input.actor ?? null,
    };
    await this.store.putRecordingPolicy(p);
    return p;
  }

  removePolicy(scope: PolicyScope, scopeId: string): Promise<boolean> {
    return this.store.deleteRecordingPolicy(scope, scopeId);
  }

  listPolicies(projectId?: string): Promise<RecordingPolicy[]> {
    return this.store.listRecordingPolicies(projectId);
  }

  async policyFor(projectId: string, serverId: string): Promise<RecordingPolicy | null> {
    return effectivePolicy(await this.store.recordingPoliciesFor(projectId, serverId), serverId);
  }

  // ---- recording

  /** The recorder of a new session when its policy records it, else null. */
  async tapFor(session: { id: string; projectId: string; serverId: string }): Promise<SessionTap | null> {
    const policy = await this.policyFor(session.projectId, session.serverId);
    if (!policy?.enabled) return null;
    if (!this.dirReady) {
      mkdirSync(this.config.dir, { recursive: true, mode: 0o700 });
      this.dirReady = true;
    }
    // Nothing is written, and no timer runs, until the session is established (started()).
    return new SessionRecorder(this, session, policy);
  }

  /** @internal a recorder whose session is established: its records go to the worker. */
  register(r: SessionRecorder, id: string, key: Buffer, file: string): number {
    const slot = this.channel.open(id, key, join(this.config.dir, file));
    this.active.add(r);
    this.bySlot.set(slot, r);
    if (!this.timer) {
      this.timer = setInterval(() => this.flushAll(), this.config.flushMs);
      this.timer.unref();
    }
    return slot;
  }

  /** @internal the recorder's link back. */
  newRecording(session: { id: string; projectId: string; serverId: string }, policy: RecordingPolicy): { record: RecordingRecord; key: Buffer } {
    const id = uuid();
    const key = randomBytes(32);
    const now = this.clock.now();
    const record: RecordingRecord = {
      id, sessionId: session.id, projectId: session.projectId, serverId: session.serverId, nodeId: this.config.nodeId,
      file: `${id}.ecsrec`, sealedKey: this.box.seal(key.toString('base64'), `recording:${id}`), keystrokes: policy.keystrokes,
      startedAt: now, endedAt: null, expiresAt: now + policy.retentionDays * DAY_MS, bytes: 0, chunks: 0, digest: '', durationMs: 0,
    };
    return { record, key };
  }

  /** @internal */
  get now(): number {
    return this.clock.now();
  }

  /** @internal */
  get logger(): Logger {
    return this.log;
  }

  /** @internal */
  finished(r: SessionRecorder, slot: number): void {
    this.active.delete(r);
    this.bySlot.delete(slot);
    if (this.active.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Every flush interval: hands what is staged to the worker, and tells the store how far each recording got. */
  private flushAll(): void {
    this.channel.flush();
    for (const r of this.active) r.syncProgress();
  }

  /** Recorders still running (tests, the bench). */
  get activeCount(): number {
    return this.active.size;
  }

  /** Ends every recording in progress (shutdown: their sessions are closing anyway), then the worker. */
  async stop(): Promise<void> {
    await Promise.all([...this.active].map((r) => r.finish('shutting-down')));
    await this.channel.stop();
  }

  /** The recording worker's JS heap (bytes, after a full GC when exposed; 0 without a worker): the bench counts it. */
  workerHeapUsed(): Promise<number> {
    return this.channel.workerHeapUsed();
  }

  // ---- reading

  async get(id: string): Promise<RecordingRecord | null> {
    return this.store.getRecording(id);
  }

  list(filter: RecordingFilter): Promise<RecordingRecord[]> {
    return this.store.listRecordings(filter);
  }

  /** A recording's data key, opened with the master key. */
  private keyOf(rec: RecordingRecord): Buffer {
    try {
      return Buffer.from(this.box.open(rec.sealedKey, `recording:${rec.id}`), 'base64');
    } catch (e) {
      throw new ConsoleError('INTERNAL', `recording ${rec.id}: its key does not open with the master key`, {}, { cause: e });
    }
  }

  /**
   * The player's seekable form of a recording whose records `read` were just read: from its
   * cache when the recording is finished and verified, else built (seekable-cache.ts).
   */
  seekableForm(rec: RecordingRecord, read: ReadRecording): Promise<SeekableResult> {
    return this.seekable.get(rec, this.keyOf(rec), read);
  }

  /** Opens a recording: its records and how they compare with the store's digest chain. */
  async read(rec: RecordingRecord): Promise<ReadRecording> {
    const key = this.keyOf(rec);
    try {
      return await readRecording(join(this.config.dir, rec.file), rec.id, key, { chunks: rec.chunks, digest: rec.digest });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: Buffer.alloc(0), chunks: 0, integrity: rec.chunks > 0 ? 'tampered' : 'verified' };
      throw e;
    }
  }

  // ---- purge

  /** Deletes recordings past their retention, then the oldest of each project over its quota (each with its seekable form). Returns how many. */
  async purge(): Promise<number> {
    const now = this.clock.now();
    let n = 0;
    // Leftovers of seekable forms (a build killed mid-write; a cache whose recording went without it): hourly.
    await this.seekable.sweep(now).catch((e: unknown) => this.log.warn({ error: (e as Error).message }, 'seekable form sweep failed'));
    for (const r of await this.store.listRecordings({ expiredBefore: now, oldestFirst: true, limit: 1000 })) n += await this.delete(r);
    const quotas = new Map<string, number>();
    for (const p of await this.store.listRecordingPolicies()) if (p.scope === 'project' && p.quotaBytes !== null) quotas.set(p.projectId, p.quotaBytes);
    if (quotas.size === 0) return n;
    for (const { projectId, bytes } of await this.store.recordingBytesByProject()) {
      const quota = quotas.get(projectId);
      if (quota === undefined || bytes <= quota) continue;
      let over = bytes - quota;
      for (const r of await this.store.listRecordings({ projectId, oldestFirst: true, limit: 1000 })) {
        if (over <= 0) break;
        // A recording in progress is not cut: the oldest finished ones go first.
        if (r.endedAt === null && [...this.active].some((a) => a.recordingId === r.id)) continue;
        n += await this.delete(r);
        over -= r.bytes;
      }
    }
    return n;
  }

  private async delete(r: RecordingRecord): Promise<number> {
    await rm(join(this.config.dir, r.file), { force: true });
    await this.seekable.remove(r);
    return (await this.store.deleteRecording(r.id)) ? 1 : 0;
  }
}

/**
 * One session's recorder: its records go through the service's channel to the recording worker;
 * the store follows the worker's progress. NOTE: an idle session's recorder is this object and
 * nothing else (no timer, no buffer, no file handle, no key once started).
 */
export class SessionRecorder implements SessionTap {
  readonly recordingId: string;
  /** Until started: the store's row and the data key (then they are the store's and the worker's). */
  private pending: { record: RecordingRecord; key: Buffer } | null;
  private readonly keystrokes: boolean;
  private slot = 0;
  private t0 = 0;
  private done: Promise<void> | null = null;
  /** The store's row: inserted once, then its progress, one write at a time (the latest wins). */
  private inserted: Promise<void> | null = null;
  private latest: WriterProgress | null = null;
  private syncing: Promise<void> | null = null;

  constructor(private readonly svc: RecordingService, session: { id: string; projectId: string; serverId: string }, policy: RecordingPolicy) {
    this.pending = svc.newRecording(session, policy);
    this.keystrokes = policy.keystrokes;
    this.recordingId = this.pending.record.id;
  }

  started(serverInit: Buffer): void {
    const { record, key } = this.pending!;
    this.pending = null;
    this.t0 = this.svc.now;
    this.slot = this.svc.register(this, record.id, key, record.file);
    this.inserted = this.svc.store.insertRecording({ ...record, startedAt: this.t0 }).catch((e: unknown) => {
      this.svc.logger.error({ recording: this.recordingId, error: (e as Error).message }, 'recording index write failed');
    });
    this.svc.channel.append(this.slot, RecordType.ServerInit, 0, serverInit);
  }

  server(bytes: Buffer): boolean {
    return this.svc.channel.append(this.slot, RecordType.ServerBytes, this.svc.now - this.t0, bytes);
  }

  whenCaughtUp(cb: () => void): void {
    this.svc.channel.whenCaughtUp(cb);
  }

  get behind(): boolean {
    return this.svc.channel.behind;
  }

  allowsEncoding(encoding: number): boolean {
    return recordableEncoding(encoding);
  }

  client(m: ClientMessage): void {
    switch (m.type) {
      case 'PointerEvent':
        this.svc.channel.append(this.slot, RecordType.Pointer, this.svc.now - this.t0, m.raw);
        break;
      case 'KeyEvent':
      case 'QemuExtendedKeyEvent':
        // NOTE: keystrokes hold typed passwords: recorded only when the policy says so.
        if (this.keystrokes) this.svc.channel.append(this.slot, RecordType.Key, this.svc.now - this.t0, m.raw);
        break;
      case 'ClientCutText':
        this.svc.channel.append(this.slot, RecordType.ClientCutText, this.svc.now - this.t0, m.raw);
        break;
      default:
        break;
    }
  }

  ended(reasonKey: string): void {
    // A session that never got established has no recording.
    if (this.inserted) void this.finish(reasonKey);
  }

  finish(reasonKey: string): Promise<void> {
    this.done ??= (async () => {
      if (!this.inserted) return;
      this.svc.channel.append(this.slot, RecordType.End, this.svc.now - this.t0, Buffer.from(JSON.stringify({ reason: reasonKey }), 'utf8'));
      const endedAt = this.svc.now;
      const last = await this.svc.channel.close(this.slot);
      await this.syncing;
      await this.inserted;
      // Null: nothing written, or the worker is gone: the store keeps the progress it has.
      const row = last ? null : await this.svc.store.getRecording(this.recordingId).catch(() => null);
      const p = last ?? (row ? { bytes: row.bytes, chunks: row.chunks, digest: row.digest, durationMs: row.durationMs } : { bytes: 0, chunks: 0, digest: '', durationMs: 0 });
      await this.svc.store.updateRecordingProgress(this.recordingId, { ...p, endedAt })
        .catch((e: unknown) => this.svc.logger.warn({ recording: this.recordingId, error: (e as Error).message }, 'recording index update failed'));
      this.svc.finished(this, this.slot);
    })();
    return this.done;
  }

  /** @internal the worker wrote a chunk of this recording. */
  progress(p: WriterProgress): void {
    this.latest = p;
  }

  /** Writes the latest progress to the store (once per flush interval at most: called by the service's timer). */
  syncProgress(): void {
    if (this.syncing || !this.latest) return;
    this.syncing = (async () => {
      await this.inserted;
      while (this.latest) {
        const next = this.latest;
        this.latest = null;
        await this.svc.store.updateRecordingProgress(this.recordingId, next)
          .catch((e: unknown) => this.svc.logger.warn({ recording: this.recordingId, error: (e as Error).message }, 'recording index update failed'));
      }
      this.syncing = null;
    })();
  }
}
