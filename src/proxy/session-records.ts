/**
 * The store's copy of this process's live sessions, which `sessions list|kill` read on any node.
 *
 * NOTE: the copy must equal what runs, whatever the store did meanwhile. Three rules hold it:
 * - the writes of one session run in order (a session closed right after it started never has
 *   its delete overtaken by its insert);
 * - the heartbeat writes exactly the live set of this process (rows purged while the node was cut
 *   off from the store come back, rows whose delete failed go), and writes of sessions that start
 *   or end while it runs wait for it (it never writes back a session that ended meanwhile, nor
 *   deletes one that started);
 * - rows belong to this process (an instance id per start): the first heartbeat that reaches the
 *   store deletes the rows an earlier process of the same node id left behind (kill -9, crash).
 * A heartbeat after which nothing failed only refreshes the rows (one UPDATE; thousands of rows
 * rewritten every heartbeat would stall a SQLite node) unless their count is not the live count.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { SessionOwner, SessionRecord, SessionStore, SessionTraffic } from '../sessions/types.js';
import { FailureStreak } from '../util/failure-streak.js';
import { uuid } from '../util/ids.js';

/** Runs `op` now; what it throws becomes its promise's rejection. */
function attempt(op: () => Promise<void>): Promise<void> {
  try {
    return op();
  } catch (e) {
    return Promise.reject(e);
  }
}

export class SessionRecords {
  readonly owner: SessionOwner;
  /** The last write queued for each session, until it settles. */
  private readonly chains = new Map<string, Promise<void>>();
  private syncing: Promise<void> | null = null;
  private predecessorsReplaced = false;
  /** The byte counters of each live session as the last heartbeat wrote them. */
  private written = new Map<string, string>();
  /** True while the rows are known to be the live set but for writes in flight (nothing failed since the last full sync). */
  private exact = false;
  private readonly writeStreak: FailureStreak;
  private readonly syncStreak: FailureStreak;

  constructor(
    private readonly store: SessionStore,
    nodeId: string,
    private readonly clock: Clock,
    log: Logger,
    /** The sessions of this process that a row should show (established, not closed). */
    private readonly live: () => SessionRecord[],
  ) {
    this.owner = { nodeId, instanceId: uuid() };
    this.writeStreak = new FailureStreak(log, 'writing a session record', clock);
    this.syncStreak = new FailureStreak(log, 'the session heartbeat', clock);
  }

  /** A session was established: its row is written. */
  added(rec: Omit<SessionRecord, 'nodeId' | 'instanceId' | 'heartbeatAt'>): void {
    const row: SessionRecord = { ...rec, ...this.owner, heartbeatAt: this.clock.now() };
    this.write(rec.id, () => this.store.insertSession(row));
  }

  /** An established session ended: its row is deleted. */
  removed(id: string): void {
    this.write(id, () => this.store.deleteSession(id));
  }

  private write(id: string, op: () => Promise<void>): void {
    const prior = this.chains.get(id);
    const syncing = this.syncing;
    // Nothing to wait for (the common case): the write is queued now, without a turn of promises.
    const started = prior === undefined && syncing === null ? attempt(op) : Promise.all([prior, syncing]).then(op);
    // One reaction for the outcome and the chain's end (no finally(): a promise and a closure less per write).
    const next: Promise<void> = started.then(() => {
      this.writeStreak.succeeded();
      if (this.chains.get(id) === next) this.chains.delete(id);
    }, (e: unknown) => {
      this.exact = false;
      this.writeStreak.failed(e);
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
    this.chains.set(id, next);
  }

  /**
   * The heartbeat: makes the store's rows of this process equal the live set. One at a time;
   * never rejects (a failure is logged and the next heartbeat tries again).
   */
  sync(): Promise<void> {
    if (this.syncing) return this.syncing;
    // Synchronous up to the store call: the snapshot and `syncing` are taken in the same turn, so
    // every write queued after the snapshot waits for this sync.
    const live = this.live();
    const now = this.clock.now();
    const run = this.heartbeat(live, now).then(
      () => this.syncStreak.succeeded(),
      (e: unknown) => {
        this.exact = false;
        this.syncStreak.failed(e);
      },
    ).finally(() => {
      this.syncing = null;
    });
    this.syncing = run;
    return run;
  }

  private async heartbeat(live: SessionRecord[], now: number): Promise<void> {
    // Writes in flight can only make the count differ (then the full sync runs), never hide a row
    // that a failure left wrong: a failure clears `exact`.
    if (this.exact && (await this.store.touchSessions(this.owner, now, this.traffic(live))) === live.length) return;
    this.exact = true;
    try {
      await this.store.syncSessions(this.owner, live, now, !this.predecessorsReplaced);
    } catch (e) {
      this.exact = false;
      throw e;
    }
    this.predecessorsReplaced = true;
  }

  /** The sessions whose byte counters moved since the last heartbeat wrote them. */
  private traffic(live: readonly SessionRecord[]): SessionTraffic[] {
    const out: SessionTraffic[] = [];
    const seen = new Map<string, string>();
    for (const s of live) {
      const c = s.bytesToClient ?? 0;
      const b = s.bytesToBackend ?? 0;
      // Sessions without traffic have nothing to write and are not remembered (most idle ones).
      if (c === 0 && b === 0) continue;
      const key = `${c}/${b}`;
      seen.set(s.id, key);
      if (this.written.get(s.id) !== key) out.push({ id: s.id, bytesToClient: c, bytesToBackend: b });
    }
    this.written = seen;
    return out;
  }

  /** Waits (at most `ms`) for queued writes, e.g. the deletes of sessions closed at shutdown. */
  async flush(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.chains.values(), this.syncing]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }
}
