/**
 * Opening the SQLite database: file mode 0600, WAL, busy timeout, versioned migrations, and the
 * mapping of SQLite failures to domain errors.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConflictError, StoreMissingError, StoreUnavailableError } from '../../errors.js';
import { ensureDataDir, restrictFile } from '../../secrets/master-key.js';
import { newestMigration, schemaTooNewMessage } from '../migration.js';
import { SQLITE_MIGRATIONS, type Migration } from './migrations.js';

export type Db = Database.Database;

export interface OpenSqliteOptions {
  /** Milliseconds a writer waits for another process's lock before failing. */
  busyTimeoutMs?: number;
  migrations?: readonly Migration[];
  /**
   * Create the directory and the database when missing (default). When false, a missing file or
   * one without our schema is a StoreMissingError and nothing is created.
   */
  create?: boolean;
}

/** Opens (creating when missing, unless told not to) and migrates the database at `path` (or `:memory:`). */
export function openSqliteDatabase(path: string, opts: OpenSqliteOptions = {}): Db {
  const create = opts.create ?? true;
  if (path !== ':memory:') {
    if (create) {
      ensureDataDir(dirname(path));
      // NOTE: create the file 0600 before SQLite does (it would use the umask); the WAL and shared
      // memory files take the database file's mode.
      closeSync(openSync(path, 'a', 0o600));
    } else if (!existsSync(path)) {
      throw new StoreMissingError(`sqlite:${path}`);
    }
    restrictFile(path);
  }
  let db: Db;
  try {
    db = new Database(path, { timeout: opts.busyTimeoutMs ?? 5000, fileMustExist: !create });
  } catch (e) {
    throw new StoreUnavailableError(`cannot open SQLite database ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!create && path !== ':memory:') {
    let ours = false;
    try {
      ours = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
    } catch (e) {
      db.close();
      throw mapSqliteError(e);
    }
    if (!ours) {
      db.close();
      throw new StoreMissingError(`sqlite:${path} (the file holds no ecs-console tables)`);
    }
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, opts.migrations ?? SQLITE_MIGRATIONS);
  } catch (e) {
    db.close();
    throw mapSqliteError(e);
  }
  if (path !== ':memory:') {
    restrictFile(`${path}-wal`);
    restrictFile(`${path}-shm`);
  }
  return db;
}

function migrate(db: Db, migrations: readonly Migration[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  // IMMEDIATE: two processes starting at once do not both apply a migration.
  const apply = db.transaction((m: Migration) => {
    const done = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
    if (done) return;
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
  });
  const newest = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const known = newestMigration(migrations);
  if (newest > known) throw new StoreUnavailableError(schemaTooNewMessage(newest, known));
  for (const m of migrations) apply.immediate(m);
}

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL|NOMEM)/;

/** SQLite errors as domain errors: constraint violations are conflicts, I/O and locking mean unavailable. */
export function mapSqliteError(e: unknown): unknown {
  if (e instanceof Database.SqliteError) {
    if (e.code.startsWith('SQLITE_CONSTRAINT')) return new ConflictError('already exists or conflicts with existing data');
    if (UNAVAILABLE.test(e.code)) return new StoreUnavailableError(`database unavailable (${e.code})`, { cause: e });
  }
  if (e instanceof TypeError && /database connection is not open/.test(e.message)) return new StoreUnavailableError('database is closed', { cause: e });
  return e;
}

/** Runs `fn`, mapping SQLite errors. Async so every failure is a rejection. */
export async function sqlite<T>(fn: () => T): Promise<T> {
  try {
    return fn();
  } catch (e) {
    throw mapSqliteError(e);
  }
}

const statementCache = new WeakMap<Db, Map<string, Database.Statement>>();

/** A prepared statement, compiled once per database and SQL text. */
export function prep(db: Db, sql: string): Database.Statement {
  let cache = statementCache.get(db);
  if (!cache) statementCache.set(db, (cache = new Map()));
  let st = cache.get(sql);
  if (!st) cache.set(sql, (st = db.prepare(sql)));
  return st;
}

interface QueuedWrite {
  run(): unknown;
  resolve(value: unknown): void;
  reject(e: unknown): void;
}

/**
 * The longest time between two group commits while the process is busy (see GroupCommit). 2 ms
 * left most commits to the next turn (a loaded turn is longer); 8 ms halved the commits' CPU in
 * the setup profile and adds at most 8 ms to a write answered under load.
 */
export const GROUP_COMMIT_WINDOW_MS = 8;
/**
 * A turn of the event loop this short did nothing (an empty turn takes about a microsecond; one
 * that handles a single API call, some 50-150): the callers whose writes would join the batch
 * are all waiting for it, so it commits now rather than at the end of the window.
 */
export const QUIET_TURN_MS = 0.05;
/** Writes per transaction at most: a full queue commits at the next turn, window or not. */
const GROUP_COMMIT_MAX = 512;

/**
 * Group commit: writes queued together run in one transaction, so a burst of token inserts,
 * consumptions, audit and session rows costs one commit instead of one each. A write queued when
 * no commit ran for `windowMs` commits at the next turn of the event loop (a lone write waits no
 * longer than it did). Otherwise the batch commits at the first quiet turn of the event loop (one
 * shorter than `quietTurnMs`: nothing came in, so no other write is on its way) or at the end of
 * the window, whichever comes first. So while the process is busy, commits are up to `windowMs`
 * apart and every write of that window shares one `BEGIN IMMEDIATE`/`COMMIT` (each costs a WAL
 * write: 5-6 % of a session setup's CPU when commits ran every turn); and the process never sits
 * idle waiting for the window while its callers wait for the commit (with 50 API connections
 * each waiting for its answer, an idle wait for the window capped the rate at about 50 calls per
 * window). Each caller's promise settles after that COMMIT (its row is durable as before, and a
 * consumption is answered only once committed). Statements run in the order queued, one writer at
 * a time, so a token consumed twice in one batch is won by the first only. A failing statement
 * fails only its caller (SQLite undoes just that statement); a failure that ends the transaction
 * (disk full, I/O error) fails the whole batch, none of which is kept.
 *
 * With `begin` = `BEGIN` (deferred) and no window it groups reads instead: the reads of one turn
 * share one read transaction, so the WAL index is locked once for all of them (two `fcntl` calls)
 * instead of once per read. Each still reads what was committed when the batch ran, which is after
 * it was asked.
 */
export class GroupCommit {
  private queue: QueuedWrite[] = [];
  /** The flush to come: at the next turn, or at the end of the window. */
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** While waiting for the window: the next look at how long the last turn took. */
  private probe: NodeJS.Immediate | null = null;
  /** When the last probe ran (performance.now()); NaN before the first probe of a wait. */
  private lastProbeAt = NaN;
  /** When the last commit started (performance.now()); -Infinity before the first. */
  private lastFlushAt = -Infinity;
  private readonly windowMs: number;
  private readonly quietTurnMs: number;
  private readonly flushNow = (): void => this.flush();
  private readonly probeTurn = (): void => this.onProbe();

  private readonly begin: 'BEGIN IMMEDIATE' | 'BEGIN';

  /**
   * `quietTurnMs`: 0 waits for the window however quiet the process is (tests of the window);
   * QUIET_TURN_MS by default.
   */
  constructor(private readonly db: Db, opts: { windowMs?: number; begin?: 'BEGIN IMMEDIATE' | 'BEGIN'; quietTurnMs?: number } = {}) {
    this.windowMs = opts.windowMs ?? GROUP_COMMIT_WINDOW_MS;
    this.begin = opts.begin ?? 'BEGIN IMMEDIATE';
    this.quietTurnMs = opts.quietTurnMs ?? QUIET_TURN_MS;
  }

  /** Queues a write; resolves with what `fn` returned, once the batch is committed. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.immediate !== null) return;
      if (this.timer === null) {
        const wait = this.lastFlushAt + this.windowMs - performance.now();
        if (wait > 0) {
          this.timer = setTimeout(this.flushNow, Math.ceil(wait));
          if (this.quietTurnMs > 0) {
            // The first probe only notes the time: the turn in progress is judged from its start.
            this.lastProbeAt = NaN;
            this.probe = setImmediate(this.probeTurn);
          }
        } else this.immediate = setImmediate(this.flushNow);
      } else if (this.queue.length >= GROUP_COMMIT_MAX) {
        this.cancelWait();
        this.immediate = setImmediate(this.flushNow);
      }
    });
  }

  /** Once a turn while waiting for the window: commits after a quiet turn, looks again after a busy one. */
  private onProbe(): void {
    this.probe = null;
    const now = performance.now();
    if (now - this.lastProbeAt < this.quietTurnMs) return this.flush();
    this.lastProbeAt = now;
    this.probe = setImmediate(this.probeTurn);
  }

  private cancelWait(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.probe !== null) clearImmediate(this.probe);
    this.timer = null;
    this.probe = null;
  }

  /** Runs what is queued now (also called before the database closes). */
  flush(): void {
    this.cancelWait();
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.lastFlushAt = performance.now();
    const errors: unknown[] = new Array(batch.length).fill(undefined);
    const values: unknown[] = new Array(batch.length);
    try {
      this.db.exec(this.begin);
      for (let i = 0; i < batch.length; i++) {
        try {
          values[i] = batch[i]!.run();
        } catch (e) {
          errors[i] = e;
          // SQLite may have rolled the whole transaction back (SQLITE_FULL, IOERR, ...).
          if (!this.db.inTransaction) throw e;
        }
      }
      this.db.exec('COMMIT');
    } catch (e) {
      if (this.db.open && this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          /* the original error is the one to report */
        }
      }
      const mapped = mapSqliteError(e);
      for (const w of batch) w.reject(mapped);
      return;
    }
    batch.forEach((w, i) => (errors[i] === undefined ? w.resolve(values[i]) : w.reject(mapSqliteError(errors[i]))));
  }
}
