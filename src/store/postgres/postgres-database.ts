/**
 * The PostgreSQL connection pool: bounded size and timeouts so that a database that is down or
 * unreachable fails every call quickly with StoreUnavailableError (never a hang), recovery without
 * reopening (the pool drops broken connections and dials new ones), versioned migrations under an
 * advisory lock, and the mapping of PostgreSQL failures to domain errors.
 */
import { Client, DatabaseError, Pool, type ClientConfig, type PoolClient, type PoolConfig } from 'pg';
import { ConflictError, ConsoleError, StoreMissingError, StoreUnavailableError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { untilAborted } from '../../util/keyed-mutex.js';
import { newestMigration, schemaTooNewMessage, type Migration } from '../migration.js';
import type { Row } from '../row-mappers.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';

/** What the adapter logs (a pino logger fits). Never given SQL parameters or the URL. */
export type StoreLog = Pick<Logger, 'info' | 'warn' | 'error'>;

/** Tunables of the PostgreSQL adapter; every one has a default fit for production. */
export interface OpenPostgresOptions {
  /** Most connections this process opens to the database (default 10). */
  poolSize?: number;
  /** TCP connect plus startup, and waiting for a free pooled connection (default 2500 ms). */
  connectTimeoutMs?: number;
  /** Server-side limit of one statement, lock waits included (default 5000 ms). */
  statementTimeoutMs?: number;
  /** Client-side limit of one query: catches a silent network (default statementTimeoutMs + 1000). */
  queryTimeoutMs?: number;
  /** The server ends a session that idles inside a transaction this long (default 10000 ms). */
  idleInTransactionTimeoutMs?: number;
  /** An idle pooled connection is closed after this long (default 30000 ms). */
  idleTimeoutMs?: number;
  /** Limit of the migration step, waiting for another node's migration included (default 60000 ms). */
  migrationTimeoutMs?: number;
  /** The change listener checks its connection this often (default 10000 ms). */
  listenHealthCheckMs?: number;
  /** First and longest wait between reconnection attempts of the change listener (default 250 / 5000 ms). */
  listenRetryMinMs?: number;
  listenRetryMaxMs?: number;
  /** Shown in pg_stat_activity (default `ecs-console`; the listener adds `-listener`). */
  applicationName?: string;
  /** Migrations to apply (tests only; production uses POSTGRES_MIGRATIONS). */
  migrations?: readonly Migration[];
  /**
   * Create the schema in a database that has none (default). When false, such a database is a
   * StoreMissingError and nothing is created in it.
   */
  create?: boolean;
  log?: StoreLog;
}

/** The options with their defaults filled in. */
export type PostgresSettings = Required<Omit<OpenPostgresOptions, 'log'>> & { readonly log: StoreLog };

/** Fills in defaults and checks bounds (the timeouts go into SQL settings, so they must be integers). */
export function postgresSettings(opts: OpenPostgresOptions = {}): PostgresSettings {
  const statementTimeoutMs = opts.statementTimeoutMs ?? 5000;
  const s: PostgresSettings = {
    poolSize: opts.poolSize ?? 10,
    connectTimeoutMs: opts.connectTimeoutMs ?? 2500,
    statementTimeoutMs,
    queryTimeoutMs: opts.queryTimeoutMs ?? statementTimeoutMs + 1000,
    idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs ?? 10_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
    migrationTimeoutMs: opts.migrationTimeoutMs ?? 60_000,
    listenHealthCheckMs: opts.listenHealthCheckMs ?? 10_000,
    listenRetryMinMs: opts.listenRetryMinMs ?? 250,
    listenRetryMaxMs: opts.listenRetryMaxMs ?? 5000,
    applicationName: opts.applicationName ?? 'ecs-console',
    migrations: opts.migrations ?? POSTGRES_MIGRATIONS,
    create: opts.create ?? true,
    log: opts.log ?? silentLogger(),
  };
  for (const [k, v] of Object.entries(s)) {
    if (typeof v === 'number' && (!Number.isSafeInteger(v) || v < 1)) throw new RangeError(`PostgreSQL option ${k} must be a positive integer`);
  }
  return s;
}

/** Connection settings shared by the pool, the migration client and the change listener. */
export function clientConfig(url: string, s: PostgresSettings, overrides: Partial<ClientConfig> = {}): ClientConfig {
  return {
    connectionString: url,
    application_name: s.applicationName,
    connectionTimeoutMillis: s.connectTimeoutMs,
    statement_timeout: s.statementTimeoutMs,
    query_timeout: s.queryTimeoutMs,
    // NOTE: a node that stalls inside updateServer's transaction holds a row lock; the server ends
    // such a session so other nodes are not blocked behind it.
    idle_in_transaction_session_timeout: s.idleInTransactionTimeoutMs,
    // TCP keepalive finds idle connections whose peer vanished without a FIN (host down, cable cut).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...overrides,
  };
}

/** A PostgreSQL URL as messages may show it: without its password. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** SQLSTATE classes and codes that mean "cannot serve now" rather than "this request is wrong". */
const UNAVAILABLE_CLASSES = new Set([
  '08', // connection exception
  '28', // invalid authorization (wrong user or password in the URL)
  '3D', // the database does not exist
  '40', // serialization failure, deadlock: retryable
  '53', // insufficient resources: too many connections, disk full, out of memory
  '57', // operator intervention: statement timeout, admin shutdown, server starting up
  '58', // system error (I/O)
  'XX', // internal error
]);
const UNAVAILABLE_CODES = new Set(['25P03' /* idle in transaction timeout */, '55P03' /* lock not available */]);

/** A short, secret-free description of a failure for messages and logs (never the SQL parameters). */
export function describePgError(e: unknown): string {
  if (e instanceof DatabaseError) return `${e.code ?? 'unknown'} ${e.message}`;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code} ${e.message}`.trim() : e.message || 'unknown error';
  }
  return String(e);
}

/**
 * PostgreSQL failures as domain errors: integrity violations are conflicts (as SQLite's constraint
 * errors), connection, timeout and server-state failures mean unavailable. SQL errors that only a
 * bug can cause (syntax, types) pass through unchanged, to surface as internal errors.
 */
export function mapPostgresError(e: unknown): unknown {
  if (e instanceof ConsoleError) return e;
  if (e instanceof DatabaseError) {
    const code = e.code ?? '';
    // NOTE: no cause: the error's detail names the conflicting key, which may be a token hash.
    if (code.startsWith('23')) return new ConflictError('already exists or conflicts with existing data');
    if (UNAVAILABLE_CLASSES.has(code.slice(0, 2)) || UNAVAILABLE_CODES.has(code)) {
      return new StoreUnavailableError(`PostgreSQL unavailable (${code})`, { cause: e });
    }
    return e;
  }
  // The driver's own failures are plain Errors (connection terminated, query read timeout, pool
  // ended, connect timeout); the socket's are Node system errors with a code (ECONNREFUSED, …).
  const system = e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string';
  if (e instanceof Error && (e.constructor === Error || system)) {
    return new StoreUnavailableError(`PostgreSQL unavailable: ${describePgError(e)}`, { cause: e });
  }
  return e;
}

/** The query surface the stores use, over the pool or one transaction's connection. */
export interface Sql {
  /** Every row of one statement. */
  rows(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /** The first row, or null. */
  one(text: string, params?: readonly unknown[]): Promise<Row | null>;
  /** How many rows the statement changed. */
  count(text: string, params?: readonly unknown[]): Promise<number>;
}

function sqlOver(run: (text: string, params: readonly unknown[]) => Promise<{ rows: Row[]; rowCount: number | null }>): Sql {
  return {
    rows: async (text, params = []) => (await run(text, params)).rows,
    one: async (text, params = []) => (await run(text, params)).rows[0] ?? null,
    count: async (text, params = []) => (await run(text, params)).rowCount ?? 0,
  };
}

/**
 * Ends a client without ever throwing or waiting long: `end()` of a connection that is broken or
 * still connecting may settle late, or never.
 */
export async function endClient(client: Client, waitMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
  ]);
  clearTimeout(timer);
}

/**
 * Advisory lock keys (the two-int4 form, scoped to the database): 'ECSC' and what is locked.
 * Transaction-level only, so a lock never outlives its transaction or a dead connection.
 */
export const ADVISORY_LOCKS = {
  /** Applying migrations. */
  migrations: [0x45435343, 1],
  /** Drawing a change feed id (see PostgresChangeFeedStore.appendChange). */
  changeAppend: [0x45435343, 2],
  /** Recording the first master key check (see PostgresKeyCheckStore.initKeyCheck). */
  keyCheck: [0x45435343, 3],
} as const;

/**
 * Session-level advisory locks on backend resources (a VM's VNC password): class 'ECSV', object a
 * 32-bit hash of the resource's name (a collision only serialises two VMs needlessly).
 */
export const BACKEND_LOCK_CLASS = 0x45435356;

/** A pool over one PostgreSQL database, with every failure mapped to domain errors. */
export class PostgresDatabase implements Sql {
  private readonly pool: Pool;
  private closing: Promise<void> | null = null;
  private readonly sql: Sql;

  private constructor(private readonly url: string, readonly settings: PostgresSettings) {
    const config: PoolConfig = {
      ...clientConfig(url, settings),
      max: settings.poolSize,
      idleTimeoutMillis: settings.idleTimeoutMs,
    };
    this.pool = new Pool(config);
    // An idle connection that breaks (server restarted, backend terminated) is dropped by the pool,
    // which then emits 'error': without this listener that would crash the process.
    this.pool.on('error', (e) => settings.log.warn({ pgError: describePgError(e) }, 'idle PostgreSQL connection lost; the pool will reconnect'));
    this.sql = sqlOver((text, params) => this.withClient((c) => c.query<Row>(text, params as unknown[])));
  }

  /** Opens a pool on `url` and brings the schema up to date; fails with StoreUnavailableError. */
  static async open(url: string, opts: OpenPostgresOptions = {}): Promise<PostgresDatabase> {
    const db = new PostgresDatabase(url, postgresSettings(opts));
    try {
      await db.migrate();
    } catch (e) {
      await db.close();
      throw mapPostgresError(e);
    }
    return db;
  }

  rows(text: string, params?: readonly unknown[]): Promise<Row[]> {
    return this.sql.rows(text, params);
  }
  one(text: string, params?: readonly unknown[]): Promise<Row | null> {
    return this.sql.one(text, params);
  }
  count(text: string, params?: readonly unknown[]): Promise<number> {
    return this.sql.count(text, params);
  }

  /** Runs `fn` in one transaction (READ COMMITTED) on one connection; rolls back when it throws. */
  transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return this.withClient(async (c, discard) => {
      await c.query('BEGIN');
      try {
        const out = await fn(sqlOver((text, params) => c.query<Row>(text, params as unknown[])));
        await c.query('COMMIT');
        return out;
      } catch (e) {
        // A failed ROLLBACK leaves the connection in an unknown state: it must not return to the pool.
        await c.query('ROLLBACK').catch(discard);
        throw e;
      }
    });
  }

  /**
   * Runs `fn` holding the session-level advisory lock (classId, objId) on one pooled connection.
   * NOTE: a session lock, not a transaction's: `fn` may take seconds (a hypervisor's answers), and
   * a connection idle inside a transaction is ended by the server after idleInTransactionTimeoutMs.
   * Tried every `pollMs` (pg_try_advisory_lock: a waiting statement could not be given up when the
   * signal aborts); released after `fn`, and a connection whose unlock fails is closed (which
   * releases it) instead of returning to the pool.
   */
  withAdvisoryLock<T>(classId: number, objId: number, signal: AbortSignal, pollMs: number, fn: () => Promise<T>): Promise<T> {
    return this.withClient(async (c, discard) => {
      for (;;) {
        const r = await c.query<Row>('SELECT pg_try_advisory_lock($1, $2) AS ok', [classId, objId]);
        if (r.rows[0]?.['ok'] === true) break;
        await untilAborted(new Promise((resolve) => setTimeout(resolve, pollMs)), signal);
      }
      try {
        return await fn();
      } finally {
        const r = await c.query<Row>('SELECT pg_advisory_unlock($1, $2) AS ok', [classId, objId]).catch((e: unknown) => {
          discard(e);
          return null;
        });
        if (r && r.rows[0]?.['ok'] !== true) discard(new Error('advisory lock was not held at unlock'));
      }
    });
  }

  /** Ends the pool (waits for queries in flight, each bounded by the query timeout). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.pool.end().catch((e: unknown) => {
      this.settings.log.warn({ pgError: describePgError(e) }, 'closing the PostgreSQL pool failed');
    });
    return this.closing;
  }

  /** Checks a connection out for `fn`; maps every failure; never returns a broken connection to the pool. */
  private async withClient<T>(fn: (c: PoolClient, discard: (e: unknown) => void) => Promise<T>): Promise<T> {
    if (this.closing) throw new StoreUnavailableError('PostgreSQL store is closed');
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw mapPostgresError(e);
    }
    let broken: Error | undefined;
    const discard = (e: unknown): void => {
      broken ??= e instanceof Error ? e : new Error(String(e));
    };
    // NOTE: the pool listens for 'error' on idle connections only; a checked-out connection that
    // drops emits 'error' too, and an 'error' event without a listener would crash the process.
    client.on('error', discard);
    try {
      return await fn(client, discard);
    } catch (e) {
      // No answer from the server (timeout, lost socket): what the connection is doing is unknown.
      if (!(e instanceof DatabaseError) && !(e instanceof ConsoleError)) discard(e);
      throw mapPostgresError(e);
    } finally {
      client.off('error', discard);
      client.release(broken);
    }
  }

  /**
   * Applies the pending migrations in one transaction on a dedicated connection, under a
   * transaction-level advisory lock.
   * NOTE: several nodes starting at once queue on the lock; each then sees what the previous one
   * recorded, so every migration runs exactly once. The lock (database-scoped) goes away with the
   * transaction or the connection, so a node dying mid-migration blocks no one.
   */
  private async migrate(): Promise<void> {
    const s = this.settings;
    const client = new Client(clientConfig(this.url, s, {
      statement_timeout: s.migrationTimeoutMs,
      query_timeout: s.migrationTimeoutMs + 1000,
    }));
    client.on('error', () => undefined); // failures surface through the awaited calls below
    try {
      await client.connect();
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...ADVISORY_LOCKS.migrations]);
      if (!s.create && (await client.query<Row>("SELECT to_regclass('schema_migrations') AS t")).rows[0]?.['t'] === null) {
        throw new StoreMissingError(describePostgresUrl(this.url));
      }
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
      const done = new Set((await client.query<Row>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r['version'])));
      const found = Math.max(0, ...done);
      const known = newestMigration(s.migrations);
      if (found > known) throw new StoreUnavailableError(schemaTooNewMessage(found, known));
      for (const m of [...s.migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
        s.log.info({ version: m.version, name: m.name }, 'applied PostgreSQL migration');
      }
      await client.query('COMMIT');
    } finally {
      // Ending the connection rolls back whatever did not commit and releases the lock.
      await endClient(client, s.connectTimeoutMs);
    }
  }
}
