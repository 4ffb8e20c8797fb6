import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStores } from '../../../src/store/sqlite/sqlite-stores.js';
import { openSqliteDatabase } from '../../../src/store/sqlite/sqlite-database.js';
import { StoreMissingError, StoreUnavailableError } from '../../../src/errors.js';
import { SQLITE_MIGRATIONS } from '../../../src/store/sqlite/migrations.js';
import { runStoreContract } from '../../contract/store-contract.js';
import { tempDir } from '../../helpers/stack.js';

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
