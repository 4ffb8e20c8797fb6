/**
 * PostgreSQL for system tests: throwaway databases on the local server, backend termination, and a
 * TCP proxy that cuts and restores connectivity. A test needing PostgreSQL fails (never skips) when
 * the server is down, saying how to start it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';

/** The head of PostgreSQL's ReadyForQuery message, which ends every answer ('Z', length 5). */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);

/** The database tests connect to for administration (trust auth, local only). */
export const ADMIN_URL = process.env['ECS_CONSOLE_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

const START_HINT = 'start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';

/** Runs one statement on the admin database; fails the test clearly when PostgreSQL is down. */
export async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000, application_name: 'ecs-console-test-admin' });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    assert.fail(`PostgreSQL is not reachable at ${new URL(ADMIN_URL).host} (${(e as Error).message || (e as NodeJS.ErrnoException).code}); ${START_HINT}`);
  }
  try {
    return await client.query(sql, params);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The URL of database `name` on the admin server, optionally through another port. */
export function databaseUrl(name: string, port?: number, password?: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  if (port !== undefined) u.port = String(port);
  if (password !== undefined) u.password = password;
  return u.toString();
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database, ending whatever is still connected to it. */
  drop(): Promise<void>;
}

/** Creates an empty database with a random name. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `ecs_console_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  return {
    name,
    url: databaseUrl(name),
    // WITH (FORCE), PostgreSQL 13+: a connection a failing test left open does not block the drop.
    drop: async () => void (await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

/** Terminates the backends of database `name` (only those of `applicationName` when given); returns how many. */
export async function terminateBackends(name: string, applicationName?: string): Promise<number> {
  const r = await adminQuery(
    `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
     WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name = $2)`,
    [name, applicationName ?? null],
  );
  return r.rows.filter((row: { ok: boolean }) => row.ok).length;
}

/** How many backends of database `name` (of `applicationName` when given) exist. */
export async function countBackends(name: string, applicationName?: string): Promise<number> {
  const r = await adminQuery(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND ($2::text IS NULL OR application_name = $2)',
    [name, applicationName ?? null],
  );
  return (r.rows[0] as { n: number }).n;
}

/**
 * A TCP proxy in front of PostgreSQL on a fixed local port, to take the database away and give it
 * back without touching the server: `refuse()` closes the port (connection refused) and drops every
 * connection; `blackhole()` keeps accepting but carries nothing, as a network that swallows packets;
 * `cutAfterReply(text)` does as `refuse()` right after the server answered the next statement that
 * contains `text` (the answer reaches the client); `restore()` forwards again on the same port.
 */
export class TcpProxy {
  private server: Server | null = null;
  private mode: 'forward' | 'blackhole' | 'refuse' = 'forward';
  private readonly pairs = new Set<{ client: Socket; upstream: Socket | null }>();
  private trigger: { pattern: Buffer; pair: object | null; done: () => void } | null = null;

  private constructor(private readonly target: { host: string; port: number }, private listenPort: number) {}

  /** Starts forwarding 127.0.0.1:<random port> to the admin server. */
  static async start(): Promise<TcpProxy> {
    const u = new URL(ADMIN_URL);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port || 5432) }, 0);
    await proxy.listen();
    return proxy;
  }

  get port(): number {
    return this.listenPort;
  }

  /** Closes the port and drops every connection: clients see resets, then connection refused. */
  async refuse(): Promise<void> {
    this.mode = 'refuse';
    this.dropAll();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /**
   * Lets the next statement containing `text` (the Parse or Query message carries it verbatim)
   * and its answer through, then refuses as `refuse()`. Resolves once the cut is made.
   */
  cutAfterReply(text: string): Promise<void> {
    return new Promise((resolve) => {
      this.trigger = { pattern: Buffer.from(text, 'utf8'), pair: null, done: resolve };
    });
  }

  /** Accepts but forwards nothing, in either direction, on new and existing connections. */
  blackhole(): void {
    this.mode = 'blackhole';
  }

  /** Forwards again. Connections that lived through a blackhole lost bytes: they are reset. */
  async restore(): Promise<void> {
    if (this.mode === 'blackhole') this.dropAll();
    this.mode = 'forward';
    if (!this.server) await this.listen();
  }

  async close(): Promise<void> {
    await this.refuse();
  }

  private dropAll(): void {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.pairs.clear();
  }

  private async listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => resolve());
    });
    this.listenPort = (server.address() as { port: number }).port;
    this.server = server;
  }

  private accept(client: Socket): void {
    const pair: { client: Socket; upstream: Socket | null } = { client, upstream: null };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    if (this.mode !== 'forward') return; // blackholed: held open, never answered
    const upstream = connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    // Data moves only while forwarding: a blackhole swallows it in both directions.
    client.on('data', (b) => {
      if (this.mode !== 'forward') return;
      if (this.trigger && !this.trigger.pair && b.includes(this.trigger.pattern)) this.trigger.pair = pair;
      upstream.write(b);
    });
    upstream.on('data', (b) => {
      if (this.mode !== 'forward') return;
      const t = this.trigger;
      // PostgreSQL ends every answer with ReadyForQuery: 'Z', length 5, transaction status.
      if (t?.pair === pair && b.length >= 6 && b.subarray(b.length - 6, b.length - 1).equals(READY_FOR_QUERY)) {
        this.trigger = null;
        this.pairs.delete(pair);
        client.end(b);
        upstream.destroy();
        void this.refuse().then(t.done);
        return;
      }
      client.write(b);
    });
  }
}
