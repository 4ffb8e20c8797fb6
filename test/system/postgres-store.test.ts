/**
 * The PostgreSQL adapter against a real PostgreSQL: the shared store contract (races across two
 * pools), then what only a shared database has: migrations under concurrency, cross-node
 * atomicity, LISTEN/NOTIFY and its reconnection, and failing fast (then recovering) when the
 * database goes away. Fails, never skips, when PostgreSQL is not running.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openStores } from '../../src/app.js';
import type { Config } from '../../src/config/config.js';
import { ConflictError, StoreMissingError, StoreUnavailableError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { newestMigration, type Migration } from '../../src/store/migration.js';
import type { ChangeEvent } from '../../src/sessions/types.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { openPostgresStores, type OpenPostgresOptions } from '../../src/store/postgres/postgres-stores.js';
import type { Stores } from '../../src/store/stores.js';
import { runStoreContract } from '../contract/store-contract.js';
import { countBackends, createTestDatabase, databaseUrl, TcpProxy, terminateBackends, type TestDatabase } from '../helpers/postgres.js';
import { LogCapture } from '../helpers/stack.js';

let contractDb: TestDatabase | null = null;
runStoreContract({
  name: 'postgres',
  locksAcrossHandles: true,
  async open() {
    contractDb = await createTestDatabase();
    return openPostgresStores(contractDb.url);
  },
  async openSecond() {
    // Another pool on the same database: the 50 concurrent consumes race across connections.
    return openPostgresStores(contractDb!.url);
  },
  async teardown() {
    await contractDb?.drop();
  },
});

/** application_name of the change listener's connection (the pool's plus `-listener`). */
const LISTENER = 'ecs-console-listener';

/** Rows of one statement on its own connection to `url`. */
async function rowsOf(url: string, sql: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

const hex = (n: number): string => n.toString(16).padStart(32, '0');

/** Resolves when `check()` is true, polling; fails after `ms`. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Counts calls and lets a test wait for the next ones. */
class CallCounter {
  count = 0;
  readonly fn = (): void => void this.count++;
  async waitFor(n: number, what: string, ms = 5000): Promise<number> {
    const start = performance.now();
    await eventually(`${what} (${n} calls, saw ${this.count})`, () => this.count >= n, ms);
    return performance.now() - start;
  }
}

async function seed(s: Stores): Promise<{ domainId: string; projectId: string; userId: string }> {
  const domainId = hex(1);
  const projectId = hex(2);
  const userId = hex(3);
  await s.identity.insertDomain({ id: domainId, name: 'dom', createdAt: 1 });
  await s.identity.insertProject({ id: projectId, name: 'proj', domainId, createdAt: 2 });
  await s.identity.insertUser({ id: userId, domainId, name: 'u', passwordHash: 'scrypt$x', actions: ['*'], createdAt: 3 });
  return { domainId, projectId, userId };
}

function serverRecord(projectId: string, now: number) {
  return {
    id: randomUUID(), projectId, name: 'web', status: 'ACTIVE' as const, availabilityZone: 'az1', createdAt: now, updatedAt: now,
    console: { kind: 'static' as const, host: '127.0.0.1', port: 5900, auth: 'none' as const, passwordSealed: null, tls: null }, consoleRevision: 1,
  };
}

/** One call of every port method (arguments need not exist), to show each fails the same way. */
function everyMethod(s: Stores): Array<[string, () => Promise<unknown>]> {
  const id = randomUUID();
  const h = 'a'.repeat(64);
  return [
    ['ping', () => s.ping()],
    ['identity.insertDomain', () => s.identity.insertDomain({ id: hex(9), name: 'x', createdAt: 1 })],
    ['identity.getDomain', () => s.identity.getDomain(id)],
    ['identity.getDomainByName', () => s.identity.getDomainByName('x')],
    ['identity.insertProject', () => s.identity.insertProject({ id: hex(9), name: 'x', domainId: hex(9), createdAt: 1 })],
    ['identity.getProject', () => s.identity.getProject(id)],
    ['identity.listProjects', () => s.identity.listProjects()],
    ['identity.insertUser', () => s.identity.insertUser({ id, domainId: hex(9), name: 'x', passwordHash: 'h', actions: [], createdAt: 1 })],
    ['identity.getUser', () => s.identity.getUser(id)],
    ['identity.getUserByName', () => s.identity.getUserByName(hex(9), 'x')],
    ['identity.insertAccessKey', () => s.identity.insertAccessKey({ ak: 'AK', userId: id, projectId: id, skSealed: 's', actions: [], createdAt: 1 })],
    ['identity.getAccessKey', () => s.identity.getAccessKey('AK')],
    ['identity.listAccessKeys', () => s.identity.listAccessKeys(id)],
    ['identity.deleteAccessKey', () => s.identity.deleteAccessKey('AK')],
    ['signatureFailures.getSignatureFailures', () => s.signatureFailures.getSignatureFailures('AK', '10.0.0.1', 1)],
    ['signatureFailures.recordSignatureFailure', () => s.signatureFailures.recordSignatureFailure('AK', '10.0.0.1', 1, 5, 1)],
    ['signatureFailures.clearSignatureFailures', () => s.signatureFailures.clearSignatureFailures('AK', null)],
    ['signatureFailures.purgeSignatureFailures', () => s.signatureFailures.purgeSignatureFailures(1)],
    ['signatureFailures.trimSignatureFailures', () => s.signatureFailures.trimSignatureFailures(100)],
    ['identity.insertIamToken', () => s.identity.insertIamToken({ hash: h, userId: id, projectId: id, issuedAt: 1, expiresAt: 2 })],
    ['identity.getIamToken', () => s.identity.getIamToken(h)],
    ['identity.deleteIamToken', () => s.identity.deleteIamToken(h)],
    ['identity.purgeIamTokens', () => s.identity.purgeIamTokens(1)],
    ['servers.insertServer', () => s.servers.insertServer(serverRecord(hex(9), 1))],
    ['servers.getServer', () => s.servers.getServer(id)],
    ['servers.listServers', () => s.servers.listServers({})],
    ['servers.countServers', () => s.servers.countServers({})],
    ['servers.updateServer', () => s.servers.updateServer(id, { status: 'SHUTOFF' }, 1)],
    ['servers.deleteServer', () => s.servers.deleteServer(id)],
    ['consoleTokens.insertConsoleToken', () => s.consoleTokens.insertConsoleToken({ hash: h, serverId: id, projectId: id, kind: 'vnc' as const, consoleRevision: 1, issuedAt: 1, expiresAt: 2, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null })],
    ['consoleTokens.consumeConsoleToken', () => s.consoleTokens.consumeConsoleToken(h, 1, 'n')],
    ['consoleTokens.getConsoleToken', () => s.consoleTokens.getConsoleToken(h)],
    ['consoleTokens.revokeServerConsoleTokens', () => s.consoleTokens.revokeServerConsoleTokens(id, 'server-stopped', 1)],
    ['consoleTokens.releaseConsoleToken', () => s.consoleTokens.releaseConsoleToken(h, 1, 'n')],
    ['consoleTokens.purgeConsoleTokens', () => s.consoleTokens.purgeConsoleTokens(1)],
    ['audit.appendAudit', () => s.audit.appendAudit({ at: 1, kind: 'issued', nodeId: 'n', projectId: null, serverId: null, tokenRef: null, sessionId: null, detail: {} })],
    ['audit.listAudit', () => s.audit.listAudit({})],
    ['sessions.insertSession', () => s.sessions.insertSession({ id, nodeId: 'n', instanceId: 'i', serverId: id, projectId: id, tokenRef: 't', clientAddress: 'a', startedAt: 1, heartbeatAt: 1 })],
    ['sessions.deleteSession', () => s.sessions.deleteSession(id)],
    ['sessions.syncSessions', () => s.sessions.syncSessions({ nodeId: 'n', instanceId: 'i' }, [], 1, true)],
    ['sessions.touchSessions', () => s.sessions.touchSessions({ nodeId: 'n', instanceId: 'i' }, 1)],
    ['sessions.listSessions', () => s.sessions.listSessions({ freshSince: 0 })],
    ['sessions.getSession', () => s.sessions.getSession(id)],
    ['sessions.purgeStaleSessions', () => s.sessions.purgeStaleSessions(1)],
    ['changes.appendChange', () => s.changes.appendChange({ at: 1, kind: 'session-kill', serverId: null, sessionId: id })],
    ['changes.changesSince', () => s.changes.changesSince(0, 10)],
    ['changes.latestChangeId', () => s.changes.latestChangeId()],
    ['changes.purgeChanges', () => s.changes.purgeChanges(1)],
  ];
}

/** Calls every method at once; each must reject with StoreUnavailableError. Returns the slowest rejection (ms). */
async function everyMethodUnavailable(s: Stores): Promise<number> {
  const times = await Promise.all(everyMethod(s).map(async ([name, call]) => {
    const start = performance.now();
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof StoreUnavailableError, `${name}: expected StoreUnavailableError, got ${String(e)}`);
      return true;
    });
    return performance.now() - start;
  }));
  return Math.max(...times);
}

describe('postgres adapter', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
    const s = await openPostgresStores(db.url);
    await seed(s);
    await s.close();
  });
  after(async () => {
    await db.drop();
  });

  /** Opens a pool, standing for one node, closed when the test ends. */
  async function node(t: TestContext, opts: OpenPostgresOptions = {}, url = db.url): Promise<Stores> {
    const s = await openPostgresStores(url, opts);
    t.after(() => s.close());
    return s;
  }
  /** A TCP proxy in front of the server, and the test database's URL through it; closed when the test ends. */
  async function cuttable(t: TestContext, password?: string): Promise<{ proxy: TcpProxy; url: string }> {
    const proxy = await TcpProxy.start();
    t.after(() => proxy.close());
    return { proxy, url: databaseUrl(db.name, proxy.port, password) };
  }

  test('app openStores picks the adapter for postgres:// and postgresql:// URLs', async () => {
    for (const url of [db.url, db.url.replace(/^postgres:/, 'postgresql:')]) {
      const s = await openStores({ store: url } as Config);
      await s.ping();
      assert.equal(typeof s.changes.watch, 'function');
      await s.close();
    }
  });

  test('migrations: eight nodes opening a fresh database at once apply each migration once', async (t) => {
    const fresh = await createTestDatabase();
    t.after(() => fresh.drop());
    // One more migration that records each run and sleeps, so that racing nodes overlap.
    const extra = newestMigration(POSTGRES_MIGRATIONS) + 1;
    const migrations: Migration[] = [...POSTGRES_MIGRATIONS, {
      version: extra, name: 'test: count runs',
      sql: 'CREATE TABLE IF NOT EXISTS migration_runs (at timestamptz NOT NULL DEFAULT now()); INSERT INTO migration_runs DEFAULT VALUES; SELECT pg_sleep(0.2);',
    }];
    const nodes = await Promise.all(Array.from({ length: 8 }, () => openPostgresStores(fresh.url, { migrations })));
    await Promise.all(nodes.map((n) => n.close()));
    // Reopening changes nothing.
    await (await openPostgresStores(fresh.url, { migrations })).close();
    assert.deepEqual(await rowsOf(fresh.url, 'SELECT version FROM schema_migrations ORDER BY version'), migrations.map((m) => ({ version: m.version })));
    assert.deepEqual(await rowsOf(fresh.url, 'SELECT count(*)::int AS n FROM migration_runs'), [{ n: 1 }]);
  });

  test('opening an existing store only: an empty database is refused and left empty', async (t) => {
    const fresh = await createTestDatabase();
    t.after(() => fresh.drop());
    await assert.rejects(openPostgresStores(fresh.url, { create: false }), (e: unknown) => e instanceof StoreMissingError && e.message.includes(`no ecs-console store at postgres://`));
    assert.deepEqual(await rowsOf(fresh.url, "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'"), [{ n: 0 }]);
    await (await openPostgresStores(fresh.url)).close();
    await (await openPostgresStores(fresh.url, { create: false })).close();
  });

  test('migrations: a database with a newer schema is refused', async (t) => {
    const fresh = await createTestDatabase();
    t.after(() => fresh.drop());
    await (await openPostgresStores(fresh.url)).close();
    await rowsOf(fresh.url, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
    await assert.rejects(openPostgresStores(fresh.url), (e: unknown) => e instanceof StoreUnavailableError && /newer than this program/.test((e as Error).message));
  });

  test('epoch-ms times beyond 32 bits and bigserial ids come back as numbers', async (t) => {
    const s = await node(t);
    const now = Date.now();
    const srv = serverRecord(hex(2), now);
    await s.servers.insertServer(srv);
    assert.deepEqual(await s.servers.getServer(srv.id), srv);
    const hash = 'b'.repeat(64);
    await s.consoleTokens.insertConsoleToken({ hash, serverId: srv.id, projectId: hex(2), kind: 'vnc' as const, consoleRevision: 1, issuedAt: now, expiresAt: now + 60_000, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null });
    const won = await s.consoleTokens.consumeConsoleToken(hash, now + 1, 'node-a');
    assert.ok(won.ok);
    assert.equal(won.token.consumedAt, now + 1);
    assert.equal(typeof won.token.expiresAt, 'number');
    const id = await s.changes.appendChange({ at: now, kind: 'server-stopped', serverId: srv.id, sessionId: null });
    assert.equal(typeof id, 'number');
    assert.equal(await s.changes.latestChangeId(), id);
    assert.deepEqual((await s.changes.changesSince(id - 1, 1))[0], { id, at: now, kind: 'server-stopped', serverId: srv.id, sessionId: null });
    assert.equal(await s.servers.countServers({}), 1);
  });

  test('writes of several tables asked together commit together; a duplicate fails only its own caller', async (t) => {
    const s = await node(t);
    const now = Date.now();
    const srv = serverRecord(hex(2), now);
    await s.servers.insertServer(srv);
    const token = (hash: string) => ({
      hash, serverId: srv.id, projectId: hex(2), kind: 'vnc' as const, consoleRevision: 1, issuedAt: now, expiresAt: now + 60_000,
      consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null,
    });
    const audit = (sessionId: string) => ({
      at: now, kind: 'connected' as const, nodeId: 'n1', projectId: hex(2), serverId: srv.id, tokenRef: 'abcd', sessionId, detail: { k: 1 },
    });
    const session = (id: string) => ({
      id, nodeId: 'n1', instanceId: 'i1', serverId: srv.id, projectId: hex(2), tokenRef: 'abcd', clientAddress: '10.0.0.1', startedAt: now, heartbeatAt: now,
      userId: null, credential: null,
    });
    const [s1, s2, gone] = [randomUUID(), randomUUID(), randomUUID()];
    await s.sessions.insertSession(session(gone));
    await s.consoleTokens.insertConsoleToken(token('c1'.repeat(32)));
    // One turn: tokens (one a duplicate), audit rows, session rows and a session delete.
    const results = await Promise.allSettled([
      s.consoleTokens.insertConsoleToken(token('c2'.repeat(32))), s.consoleTokens.insertConsoleToken(token('c1'.repeat(32))),
      s.audit.appendAudit(audit(s1)), s.audit.appendAudit(audit(s2)),
      s.sessions.insertSession(session(s1)), s.sessions.insertSession(session(s2)), s.sessions.deleteSession(gone),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    assert.ok((results[1] as PromiseRejectedResult).reason instanceof ConflictError);
    assert.equal((await s.consoleTokens.getConsoleToken('c2'.repeat(32)))?.serverId, srv.id);
    assert.deepEqual((await s.audit.listAudit({ serverId: srv.id })).map((e) => e.sessionId).sort(), [s1, s2].sort());
    assert.ok(await s.sessions.getSession(s1));
    assert.ok(await s.sessions.getSession(s2));
    assert.equal(await s.sessions.getSession(gone), null);
    // Without the duplicate, all in one go.
    const s3 = randomUUID();
    await Promise.all([s.consoleTokens.insertConsoleToken(token('c3'.repeat(32))), s.audit.appendAudit(audit(s3)), s.sessions.insertSession(session(s3)), s.sessions.deleteSession(s1)]);
    assert.ok(await s.consoleTokens.getConsoleToken('c3'.repeat(32)));
    assert.ok(await s.sessions.getSession(s3));
    assert.equal(await s.sessions.getSession(s1), null);
    assert.equal((await s.audit.listAudit({ serverId: srv.id })).length, 3);
  });

  test('integrity violations are conflicts (unique and foreign key), as in SQLite', async (t) => {
    const s = await node(t);
    await assert.rejects(s.identity.insertDomain({ id: hex(1), name: 'dom', createdAt: 1 }), ConflictError);
    await assert.rejects(s.identity.insertProject({ id: hex(77), name: 'p', domainId: hex(76), createdAt: 1 }), ConflictError);
    await s.ping();
  });

  test('across two pools: failures all counted, console revisions all bumped, purges deleted once', async (t) => {
    const a = await node(t);
    const b = await node(t);
    const both = [a, b];
    const ak = 'AK' + 'C'.repeat(18);
    // 23 concurrent failures of one (AK, address) at threshold 5, the first ones racing to insert
    // the record: only the first four find no lock; 23 = 4 * 5 + 3 counted.
    const outcomes = await Promise.all(Array.from({ length: 23 }, (_, i) => both[i % 2]!.signatureFailures.recordSignatureFailure(ak, '10.0.0.9', 1000, 5, 60_000)));
    assert.equal(outcomes.filter((o) => !o.locked).length, 4);
    assert.equal(outcomes.filter((o) => o.lockedNow).length, 4);
    assert.ok(outcomes.every((o) => o.locked === (o.lockedUntil === 61_000)));
    assert.equal((await a.signatureFailures.getSignatureFailures(ak, '10.0.0.9', 1000))?.failures, 3);

    const srv = serverRecord(hex(2), 1);
    await a.servers.insertServer(srv);
    const updates = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      both[i % 2]!.servers.updateServer(srv.id, { console: { kind: 'static', host: `h${i}`, port: 5900 + i, auth: 'none', passwordSealed: null, tls: null } }, 100 + i)));
    assert.equal((await b.servers.getServer(srv.id))?.consoleRevision, 13);
    // Each update saw the one before it: the revisions before are 1..12, each once.
    assert.deepEqual(updates.map((u) => u!.before.consoleRevision).sort((x, y) => x - y), Array.from({ length: 12 }, (_, i) => i + 1));

    for (let i = 0; i < 30; i++) {
      await a.consoleTokens.insertConsoleToken({ hash: i.toString(16).padStart(64, 'f'), serverId: srv.id, projectId: hex(2), kind: 'vnc' as const, consoleRevision: 1, issuedAt: 0, expiresAt: 10, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null });
    }
    const purged = await Promise.all([a, b, a, b].map((s) => s.consoleTokens.purgeConsoleTokens(10)));
    assert.equal(purged.reduce((x, y) => x + y, 0), 30);
  });

  test('change feed: a follower polling during concurrent appends from two pools misses no id', async (t) => {
    // 120 appends at once queue for the pools' connections; on a loaded machine the wait for a free
    // connection can pass the default connect timeout (2.5 s, which counts the queue), and this test is
    // about the order of the feed, not about that timeout (tested apart, 'unreachable: ...').
    const patient = { connectTimeoutMs: 30_000 };
    const a = await node(t, patient);
    const b = await node(t, patient);
    let last = await a.changes.latestChangeId();
    const seen: number[] = [];
    let appending = true;
    const follower = (async () => {
      // Done only after an empty read that began once every append had returned: a read begun
      // earlier may not see the last appends (its snapshot was taken before they committed).
      for (;;) {
        const startedAfterAppends = !appending;
        const batch: ChangeEvent[] = await a.changes.changesSince(last, 1000);
        for (const c of batch) {
          seen.push(c.id);
          last = c.id;
        }
        if (startedAfterAppends && batch.length === 0) break;
      }
    })();
    const ids = await Promise.all(Array.from({ length: 120 }, (_, i) =>
      [a, b][i % 2]!.changes.appendChange({ at: i, kind: 'session-kill', serverId: null, sessionId: `s${i}` })));
    appending = false;
    await follower;
    assert.equal(new Set(ids).size, 120);
    assert.deepEqual(seen, [...ids].sort((x, y) => x - y));
  });

  test('watch: an append by another pool wakes the watcher within a second', async (t) => {
    const a = await node(t);
    const b = await node(t);
    const calls = new CallCounter();
    const stop = a.changes.watch!(calls.fn);
    await calls.waitFor(1, 'the call after the listener connects');
    const start = performance.now();
    await b.changes.appendChange({ at: 1, kind: 'server-deleted', serverId: 'x', sessionId: null });
    await calls.waitFor(2, 'the notification', 1000);
    console.log(`# append by another pool to watcher called: ${(performance.now() - start).toFixed(1)} ms`);
    stop();
    await eventually('the listener connection to close', async () => (await countBackends(db.name, LISTENER)) === 0);
    await b.changes.appendChange({ at: 2, kind: 'server-deleted', serverId: 'x', sessionId: null });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calls.count, 2, 'no calls after unsubscribing');
  });

  test('watch: survives pg_terminate_backend of its connection, calls once after reconnecting, then wakes again', async (t) => {
    const a = await node(t, { listenRetryMinMs: 50 });
    const b = await node(t);
    const calls = new CallCounter();
    a.changes.watch!(calls.fn);
    await calls.waitFor(1, 'the call after the listener connects');
    assert.equal(await terminateBackends(db.name, LISTENER), 1);
    const ms = await calls.waitFor(2, 'the call after reconnecting');
    console.log(`# listener reconnected ${ms.toFixed(0)} ms after pg_terminate_backend`);
    await b.changes.appendChange({ at: 1, kind: 'session-kill', serverId: null, sessionId: 's' });
    await calls.waitFor(3, 'a notification on the new connection', 1000);
    // And a second time, to show the backoff was reset.
    assert.equal(await terminateBackends(db.name, LISTENER), 1);
    await calls.waitFor(4, 'the call after reconnecting again');
    await a.close();
    await eventually('close() to end the listener connection', async () => (await countBackends(db.name, LISTENER)) === 0);
  });

  test('watch: a listener whose network goes silent notices (health check) and reconnects when it is back', async (t) => {
    const { proxy, url } = await cuttable(t);
    const a = await node(t, { listenHealthCheckMs: 200, queryTimeoutMs: 500, connectTimeoutMs: 500, listenRetryMinMs: 50, listenRetryMaxMs: 200 }, url);
    const b = await node(t);
    const calls = new CallCounter();
    a.changes.watch!(calls.fn);
    await calls.waitFor(1, 'the call after the listener connects');
    proxy.blackhole();
    await new Promise((r) => setTimeout(r, 1500));
    // Appended while the listener's network swallowed everything: this notification is lost.
    await b.changes.appendChange({ at: 1, kind: 'session-kill', serverId: null, sessionId: 's' });
    assert.equal(calls.count, 1);
    await proxy.restore();
    await calls.waitFor(2, 'the call after reconnecting (stands for the lost notification)');
    await b.changes.appendChange({ at: 2, kind: 'session-kill', serverId: null, sessionId: 's' });
    await calls.waitFor(3, 'a notification on the new connection', 1000);
  });

  test('unreachable: opening against a closed port or a missing database fails fast with StoreUnavailableError', async (t) => {
    const { proxy, url } = await cuttable(t);
    await proxy.refuse();
    const start = performance.now();
    await assert.rejects(openPostgresStores(url), StoreUnavailableError);
    console.log(`# open against a closed port failed after ${(performance.now() - start).toFixed(1)} ms`);
    await assert.rejects(openPostgresStores(databaseUrl(`${db.name}_missing`)), StoreUnavailableError);
  });

  test('unreachable: port closed, every method rejects with StoreUnavailableError quickly; back, calls succeed without reopening', async (t) => {
    const { proxy, url } = await cuttable(t);
    const s = await node(t, {}, url);
    await Promise.all(Array.from({ length: 5 }, () => s.ping())); // the pool holds idle connections
    await proxy.refuse();
    const slowest = await everyMethodUnavailable(s);
    console.log(`# port closed: slowest of ${everyMethod(s).length} calls failed after ${slowest.toFixed(1)} ms`);
    assert.ok(slowest < 10_000, `calls hung (${slowest} ms)`);
    await proxy.restore();
    for (const [name, call] of everyMethod(s)) {
      await call().catch((e: unknown) => assert.ok(e instanceof ConflictError, `${name} after recovery: ${String(e)}`));
    }
  });

  test('unreachable: network silent (default timeouts), every method rejects within the timeouts; back, calls succeed', async (t) => {
    const { proxy, url } = await cuttable(t);
    const s = await node(t, {}, url);
    await Promise.all(Array.from({ length: 5 }, () => s.ping()));
    proxy.blackhole();
    const slowest = await everyMethodUnavailable(s);
    console.log(`# network silent: slowest of ${everyMethod(s).length} calls failed after ${slowest.toFixed(0)} ms`);
    assert.ok(slowest < 10_000, `calls hung (${slowest} ms)`);
    await proxy.restore();
    await s.ping();
    assert.equal(await s.servers.countServers({ projectId: hex(2) }), await s.servers.countServers({ projectId: hex(2) }));
  });

  test('every backend of the database terminated mid-use: the pool reconnects by itself', async (t) => {
    const s = await node(t, { listenRetryMinMs: 50 });
    const calls = new CallCounter();
    s.changes.watch!(calls.fn);
    await calls.waitFor(1, 'the listener to connect');
    await Promise.all(Array.from({ length: 8 }, () => s.ping()));
    const killed = await terminateBackends(db.name);
    assert.ok(killed >= 2, `terminated ${killed}`);
    // Calls racing the termination may fail, but only as StoreUnavailableError, and not for long.
    let failures = 0;
    await eventually('a call to succeed', async () => {
      try {
        await s.servers.listServers({});
        return true;
      } catch (e) {
        assert.ok(e instanceof StoreUnavailableError, String(e));
        failures++;
        return false;
      }
    });
    for (let i = 0; i < 20; i++) await s.consoleTokens.getConsoleToken('0'.repeat(64));
    await calls.waitFor(2, 'the listener to reconnect');
    console.log(`# after terminating ${killed} backends: ${failures} call(s) failed before the pool recovered`);
  });

  test('logs and errors never carry the URL password', async (t) => {
    const secret = 'pw-' + randomUUID();
    // Trust authentication ignores the password, so the URL works while carrying a secret.
    const { proxy, url } = await cuttable(t, secret);
    const logs = new LogCapture();
    const s = await node(t, { log: createLogger({ level: 'debug', destination: logs }), listenRetryMinMs: 50 }, url);
    const calls = new CallCounter();
    s.changes.watch!(calls.fn);
    await calls.waitFor(1, 'the listener to connect');
    await proxy.refuse();
    const errors: unknown[] = [];
    for (const [, call] of everyMethod(s)) await call().catch((e: unknown) => errors.push(e));
    await new Promise((r) => setTimeout(r, 300)); // listener retries log their failures
    await proxy.restore();
    await calls.waitFor(2, 'the listener to reconnect');
    assert.ok(logs.lines.length > 0);
    assert.ok(!logs.text.includes(secret), 'password in the logs');
    assert.equal(errors.length, everyMethod(s).length);
    for (const e of errors) {
      assert.ok(!JSON.stringify(e).includes(secret) && !String(e).includes(secret) && !(e as Error).stack?.includes(secret), 'password in an error');
    }
  });

  test('close: later calls reject with StoreUnavailableError; close is idempotent; watch after close is inert', async () => {
    const s = await openPostgresStores(db.url);
    await s.close();
    await s.close();
    await assert.rejects(s.ping(), StoreUnavailableError);
    await assert.rejects(s.servers.getServer('x'), StoreUnavailableError);
    const stop = s.changes.watch!(() => assert.fail('called after close'));
    stop();
  });
});
