import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStores } from '../../../src/store/sqlite/sqlite-stores.js';
import { GroupCommit, openSqliteDatabase } from '../../../src/store/sqlite/sqlite-database.js';
import { StoreMissingError, StoreUnavailableError } from '../../../src/errors.js';
import { SQLITE_MIGRATIONS } from '../../../src/store/sqlite/migrations.js';
import { runStoreContract } from '../../contract/store-contract.js';
import { tempDir } from '../../helpers/stack.js';
import { JSON_ARRAY, auditWhere } from '../../../src/store/audit-sql.js';
import type { AuditFilter } from '../../../src/audit/types.js';

let dir = '';
let path = '';
runStoreContract({
  name: 'sqlite',
  async open() {
    dir = tempDir();
    path = join(dir, 'db', 'store.db');
    return openSqliteStores(path);
  },
  async openSecond() {
    return openSqliteStores(path);
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
});

test('sqlite: database and WAL files are 0600, journal is WAL, migrations recorded', async () => {
  const d = tempDir();
  const p = join(d, 'x.db');
  const s = openSqliteStores(p);
  await s.identity.insertDomain({ id: '0'.repeat(32), name: 'd', createdAt: 1 });
  for (const f of [p, `${p}-wal`]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  await s.close();
  const db = new Database(p, { readonly: true });
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(), SQLITE_MIGRATIONS.map((m) => ({ version: m.version })));
  db.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite: reopening applies no migration twice; a newer schema is refused', () => {
  const d = tempDir();
  const p = join(d, 'x.db');
  openSqliteDatabase(p).close();
  openSqliteDatabase(p).close();
  const db = new Database(p);
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('future');
  db.close();
  assert.throws(() => openSqliteDatabase(p), (e: unknown) => e instanceof StoreUnavailableError && /newer than this program/.test((e as Error).message));
  rmSync(d, { recursive: true, force: true });
});

test('sqlite: opening an existing store only creates nothing: no directory, no file, no tables', () => {
  const d = tempDir();
  const missing = join(d, 'none', 'x.db');
  assert.throws(() => openSqliteStores(missing, { create: false }), (e: unknown) => e instanceof StoreMissingError && e.message.includes(`sqlite:${missing}`));
  assert.equal(existsSync(join(d, 'none')), false);
  const empty = join(d, 'empty.db');
  writeFileSync(empty, '');
  assert.throws(() => openSqliteStores(empty, { create: false }), (e: unknown) => e instanceof StoreMissingError && /no ecs-console tables/.test(e.message));
  assert.equal(statSync(empty).size, 0);
  const real = join(d, 'real.db');
  openSqliteDatabase(real).close();
  const s = openSqliteStores(real, { create: false });
  void s.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite: a closed store answers StoreUnavailableError, not a crash', async () => {
  const d = tempDir();
  const s = openSqliteStores(join(d, 'x.db'));
  await s.close();
  await assert.rejects(s.ping(), StoreUnavailableError);
  await assert.rejects(s.servers.getServer('x'), StoreUnavailableError);
  rmSync(d, { recursive: true, force: true });
});

test('sqlite: not a database file gives StoreUnavailableError', () => {
  const d = tempDir();
  const p = join(d, 'junk.db');
  writeFileSync(p, 'this is not sqlite'.repeat(100));
  assert.throws(() => openSqliteStores(p), StoreUnavailableError);
  assert.match(readFileSync(p, 'utf8'), /this is not sqlite/);
  rmSync(d, { recursive: true, force: true });
});

test('sqlite group commit: a burst commits once; a conflicting row fails alone; the rest is kept', async () => {
  const d = tempDir();
  const p = join(d, 'g.db');
  const s = openSqliteStores(p);
  const rec = (hash: string) => ({ hash, serverId: 's', projectId: 'p', kind: 'vnc' as const, consoleRevision: 1, issuedAt: 0, expiresAt: 10, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null });
  const spy = new Database(p, { readonly: true });
  const before = spy.pragma('data_version', { simple: true });
  const results = await Promise.allSettled([
    s.consoleTokens.insertConsoleToken(rec('a'.repeat(64))),
    s.consoleTokens.insertConsoleToken(rec('a'.repeat(64))),
    s.consoleTokens.insertConsoleToken(rec('b'.repeat(64))),
    s.audit.appendAudit({ at: 1, kind: 'issued', nodeId: 'n', projectId: null, serverId: 's', tokenRef: null, sessionId: null, detail: {} }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.ok((results[1] as PromiseRejectedResult).reason instanceof Error);
  // One transaction from another connection's point of view.
  assert.equal(Number(spy.pragma('data_version', { simple: true })) - Number(before), 1);
  spy.close();
  assert.ok(await s.consoleTokens.getConsoleToken('b'.repeat(64)));
  assert.equal((await s.audit.listAudit({ serverId: 's' })).length, 1);
  await s.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite group commit over a window: writes of several turns share one commit, a token consumed twice in it is won once, a lone write does not wait', async () => {
  const d = tempDir();
  const p = join(d, 'w.db');
  const db = openSqliteDatabase(p);
  const spy = new Database(p, { readonly: true });
  const commits = (): number => Number(spy.pragma('data_version', { simple: true }));
  // No quiet turn ends the wait: the window alone (the quiet turns are the next tests').
  const writes = new GroupCommit(db, { windowMs: 50, quietTurnMs: 0 });
  db.prepare("INSERT INTO console_tokens (hash, server_id, project_id, kind, console_revision, issued_at, expires_at) VALUES ('t', 's', 'p', 'vnc', 1, 0, 1e15)").run();
  const consume = (node: string): Promise<boolean> => writes.run(() => db.prepare('UPDATE console_tokens SET consumed_at = 1, consumed_by = ? WHERE hash = ? AND consumed_at IS NULL').run(node, 't').changes === 1);
  const audit = (at: number): Promise<void> => writes.run(() => void db.prepare("INSERT INTO audit_events (at, kind, node_id, detail) VALUES (?, 'connected', 'n', '{}')").run(at));
  // The first write after a quiet time commits at the next turn, alone.
  const c0 = commits();
  const t0 = performance.now();
  await audit(0);
  assert.equal(commits() - c0, 1);
  // Within the window: writes queued over several turns wait for its end and commit together.
  const c1 = commits();
  const pending: Array<Promise<unknown>> = [audit(1), consume('n1')];
  await new Promise((r) => setImmediate(r));
  pending.push(consume('n2'), audit(2));
  await new Promise((r) => setTimeout(r, 5));
  pending.push(audit(3));
  const [, first, second] = await Promise.all(pending);
  assert.ok(performance.now() - t0 >= 49, 'held to the window');
  assert.equal(commits() - c1, 1, 'one commit for the window');
  assert.deepEqual([first, second], [true, false], 'the token is consumed once: the second consumption in the same transaction sees the first');
  assert.equal((db.prepare("SELECT consumed_by FROM console_tokens WHERE hash = 't'").get() as { consumed_by: string }).consumed_by, 'n1');
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n, 4);
  // Quiet for longer than the window: the next lone write commits at once again.
  await new Promise((r) => setTimeout(r, 60));
  const t1 = performance.now();
  await audit(4);
  assert.ok(performance.now() - t1 < 40, 'not held: no commit in the last window');
  // close() commits what is queued without waiting for the window.
  const last = audit(5);
  writes.flush();
  await last;
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n, 6);
  spy.close();
  db.close();
  rmSync(d, { recursive: true, force: true });
});

/** Turns of the event loop until `done()` (at most `max`); how many it took. */
async function turnsUntil(done: () => boolean, max = 1000): Promise<number> {
  let n = 0;
  while (!done() && n < max) {
    await new Promise((r) => setImmediate(r));
    n++;
  }
  return n;
}

test('sqlite group commit: when the event loop has a quiet turn, the batch commits without waiting for the window', async () => {
  const d = tempDir();
  const db = openSqliteDatabase(join(d, 'q.db'));
  // A window far longer than the test: only a quiet turn can end the wait.
  const writes = new GroupCommit(db, { windowMs: 3_600_000 });
  const audit = (at: number): Promise<void> => writes.run(() => void db.prepare("INSERT INTO audit_events (at, kind, node_id, detail) VALUES (?, 'connected', 'n', '{}')").run(at));
  await audit(0);
  // A commit has just run: the window would hold this write for an hour, but nothing else is
  // coming (every caller waits for it), so it commits within a few turns.
  let settled = false;
  const second = audit(1).then(() => (settled = true));
  const turns = await turnsUntil(() => settled);
  const committedAlone = settled;
  writes.flush();
  await second;
  assert.equal(committedAlone, true, `committed within ${turns} turns, not held to the window`);
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n, 2);
  db.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite group commit: writes queued over busy turns of the event loop share one commit', async () => {
  const d = tempDir();
  const p = join(d, 'b.db');
  const db = openSqliteDatabase(p);
  const spy = new Database(p, { readonly: true });
  const commits = (): number => Number(spy.pragma('data_version', { simple: true }));
  const writes = new GroupCommit(db, { windowMs: 3_600_000 });
  const audit = (at: number): Promise<void> => writes.run(() => void db.prepare("INSERT INTO audit_events (at, kind, node_id, detail) VALUES (?, 'connected', 'n', '{}')").run(at));
  await audit(0);
  const c0 = commits();
  const pending = [audit(1)];
  // Each turn does work (as one handling API calls does) and queues another write.
  for (let i = 2; i <= 5; i++) {
    await new Promise((r) => setImmediate(r));
    const until = performance.now() + 2;
    while (performance.now() < until) { /* a busy turn */ }
    pending.push(audit(i));
  }
  await Promise.all(pending);
  assert.equal(commits() - c0, 1, 'one commit for the writes of the busy turns');
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n, 6);
  spy.close();
  db.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite: an audit search reads the events this node queued before it, even when the group commit holds them for its window', async () => {
  const d = tempDir();
  const s = openSqliteStores(join(d, 'r.db'));
  const event = (serverId: string) => ({ at: 1, kind: 'rejected' as const, nodeId: 'n', projectId: null, serverId, tokenRef: null, sessionId: null, detail: {} });
  // A commit has just run: the next write is held to the end of the window.
  await s.audit.appendAudit(event('first'));
  const held = s.audit.appendAudit(event('held'));
  assert.deepEqual((await s.audit.listAudit({})).map((e) => e.serverId).sort(), ['first', 'held']);
  await held;
  await s.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite grouped reads: the reads of one turn share one read transaction, run after they were asked', async () => {
  const d = tempDir();
  const p = join(d, 'r.db');
  const s = openSqliteStores(p);
  await s.close();
  const db = openSqliteDatabase(p);
  const other = new Database(p);
  const reads = new GroupCommit(db, { begin: 'BEGIN', windowMs: 0 });
  const count = (): number => (db.prepare('SELECT COUNT(*) AS n FROM signature_failures').get() as { n: number }).n;
  const insert = other.prepare('INSERT INTO signature_failures (ak, address, failures, locked_until, expires_at) VALUES (?, ?, 1, NULL, 9e15)');
  insert.run('AK0', 'a');
  // The first read of the turn writes through another connection: the second read, in the same
  // snapshot, does not see that row; a read of the next turn does.
  const first = reads.run(() => {
    const n = count();
    insert.run('AK1', 'a');
    return n;
  });
  const second = reads.run(count);
  insert.run('AK2', 'a');
  assert.deepEqual(await Promise.all([first, second]), [2, 2], 'asked before AK2 was written, read after; one snapshot for both');
  assert.equal(await reads.run(count), 3);
  const failing = reads.run(() => db.prepare('SELECT nope FROM signature_failures').get());
  const fine = reads.run(count);
  assert.deepEqual((await Promise.allSettled([failing, fine])).map((r) => r.status), ['rejected', 'fulfilled'], 'a failing read fails alone');
  other.close();
  db.close();
  rmSync(d, { recursive: true, force: true });
});

test('sqlite: every audit search filter with an index and every token lookup, purge and revocation use one (migration 12 left none to a table scan)', () => {
  const db = openSqliteDatabase(':memory:');
  const plan = (sql: string, params: unknown[]): string =>
    (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
  // The audit search as the store runs it (auditWhere, newest first, a page).
  const search = (f: AuditFilter, index: RegExp): void => {
    const w = auditWhere({ order: 'desc', ...f }, () => '?', JSON_ARRAY.sqlite);
    const p = plan(`SELECT * FROM audit_events${w.where}${w.order} LIMIT ?`, [...w.params, 100]);
    assert.match(p, index, `${JSON.stringify(f)}: ${p}`);
    assert.doesNotMatch(p, /USE TEMP B-TREE FOR ORDER BY/, `${JSON.stringify(f)}: sorted, not read in order: ${p}`);
  };
  search({ serverId: 's' }, /USING INDEX audit_events_server \(server_id=\?\)/);
  search({ projectId: 'p' }, /USING INDEX audit_events_project \(project_id=\?\)/);
  search({ target: 'ak:A' }, /USING INDEX audit_events_target \(target=\?\)/);
  search({ actorUserId: 'u' }, /USING INDEX audit_events_actor_user \(actor_user_id=\?\)/);
  search({ actorCredential: 'ak:A' }, /USING INDEX audit_events_actor_credential \(actor_credential=\?\)/);
  search({ clientAddress: '10.0.0.1' }, /USING INDEX audit_events_client_address \(client_address=\?\)/);
  search({ domainId: 'd' }, /USING INDEX audit_events_domain \(domain_id=\?\)/);
  // An administrator's domain: its projects' events or those of the domain alone (one index each).
  const w = auditWhere({ order: 'desc', projectIds: ['p1', 'p2'], domainId: 'd' }, () => '?', JSON_ARRAY.sqlite);
  const domain = plan(`SELECT * FROM audit_events${w.where}${w.order} LIMIT ?`, [...w.params, 100]);
  assert.match(domain, /audit_events_project/, domain);
  assert.match(domain, /audit_events_domain/, domain);
  const t = auditWhere({ order: 'desc', from: 1, to: 2 }, () => '?', JSON_ARRAY.sqlite);
  assert.match(plan(`SELECT * FROM audit_events${t.where}${t.order} LIMIT ?`, [...t.params, 100]), /USING INDEX audit_events_at|USING INTEGER PRIMARY KEY/);
  assert.match(plan('DELETE FROM audit_events WHERE at < ?', [1]), /USING (COVERING )?INDEX audit_events_at \(at<\?\)/);
  // Console tokens: by hash, purge by expiry, revocation by server, by credential, by user.
  assert.match(plan('SELECT * FROM console_tokens WHERE hash = ?', ['h']), /USING INDEX sqlite_autoindex_console_tokens_1 \(hash=\?\)/);
  assert.match(plan('DELETE FROM console_tokens WHERE expires_at <= ?', [1]), /USING (COVERING )?INDEX console_tokens_expires \(expires_at<\?\)/);
  assert.match(plan('UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE server_id = ? AND revoked_at IS NULL', [1, 'r', 's']),
    /USING INDEX console_tokens_server \(server_id=\?\)/);
  assert.match(plan('UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE issued_by_user = ? AND issued_by = ? AND revoked_at IS NULL AND consumed_at IS NULL', [1, 'r', 'u', 'ak:A']),
    /USING INDEX console_tokens_issuer \(issued_by_user=\? AND issued_by=\?\)/);
  assert.match(plan('UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE issued_by_user = ? AND revoked_at IS NULL AND consumed_at IS NULL', [1, 'r', 'u']),
    /USING INDEX console_tokens_issuer \(issued_by_user=\?\)/);
  // What a console URL costs in index entries: its token row 4 (hash, server, expiry, issuer), its audit row 6 (no target, no domain).
  const entries = (table: string): string[] => (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND (sql IS NULL OR sql NOT LIKE '%WHERE%') ORDER BY name`).all(table) as Array<{ name: string }>).map((r) => r.name);
  assert.deepEqual(entries('console_tokens'), ['console_tokens_expires', 'console_tokens_issuer', 'console_tokens_server', 'sqlite_autoindex_console_tokens_1']);
  assert.deepEqual(entries('audit_events'), ['audit_events_actor_credential', 'audit_events_actor_user', 'audit_events_at', 'audit_events_client_address', 'audit_events_project', 'audit_events_server']);
  db.close();
});

test('sqlite: migration 12 on a store holding tokens and audit records keeps them, and they are found through the new indexes', async () => {
  const d = tempDir();
  const p = join(d, 'm.db');
  const old = openSqliteDatabase(p, { migrations: SQLITE_MIGRATIONS.filter((m) => m.version < 12) });
  old.prepare(`INSERT INTO console_tokens (hash, server_id, project_id, console_revision, issued_at, expires_at, issued_by, issued_by_user)
    VALUES (?, 's', 'p', 1, 1, ?, 'ak:A', 'u1')`).run('a'.repeat(64), 10 ** 13);
  old.prepare(`INSERT INTO audit_events (at, kind, node_id, detail, target, domain_id) VALUES (1, 'ak-deactivated', 'n', '{}', 'ak:A', 'd1')`).run();
  old.close();
  const s = openSqliteStores(p);
  assert.equal((await s.audit.listAudit({ order: 'desc', target: 'ak:A' })).length, 1);
  assert.equal((await s.audit.listAudit({ order: 'desc', domainId: 'd1' })).length, 1);
  assert.equal(await s.consoleTokens.revokeIssuedConsoleTokens({ issuedBy: 'ak:A', userId: 'u1' }, 'credential-revoked', 2), 1);
  await s.close();
  rmSync(d, { recursive: true, force: true });
});
