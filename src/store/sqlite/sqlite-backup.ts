/**
 * Backup and restore of the SQLite store with SQLite's online backup API: a backup is one
 * consistent snapshot even while a server writes (WAL readers do not block writers, and the copy
 * is done in one step under one read transaction), and a restore writes through SQLite's locking
 * so that no connection ever reads a half-copied file.
 *
 * A backup is a single self-contained file (rollback journal, not WAL), mode 0600. It holds
 * secret keys and VNC passwords sealed with the master key, never the key itself.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConflictError, StoreUnavailableError, ValidationError } from '../../errors.js';
import { ensureDataDir, restrictFile } from '../../secrets/master-key.js';
import type { KeyCheckStore } from '../../secrets/key-check.js';
import { newestMigration, schemaTooNewMessage } from '../migration.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteKeyCheckStore } from './sqlite-key-check-store.js';
import { mapSqliteError, openSqliteDatabase, type Db } from './sqlite-database.js';

/** Rows per table. */
export type TableCounts = Record<string, number>;

/** What a backup file holds. */
export interface BackupSummary {
  readonly path: string;
  readonly bytes: number;
  readonly schemaVersion: number;
  readonly tables: TableCounts;
}

/** Tables that make a store "in use": a restore over one of them must be asked for. */
const CONTENT_TABLES = ['projects', 'users', 'access_keys', 'servers'];

/** Every table of ours with its row count (SQLite's own tables left out), by name. */
export function tableCounts(db: Db): TableCounts {
  const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  const out: TableCounts = {};
  // Names come from sqlite_master (our own schema), quoted all the same.
  for (const n of names) out[n] = (db.prepare(`SELECT COUNT(*) AS n FROM "${n.replace(/"/g, '""')}"`).get() as { n: number }).n;
  return out;
}

function schemaVersion(db: Db): number {
  return (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
}

/** Copies every page in one step: one read transaction, so the copy is one moment of the store. */
async function copy(from: Db, to: string): Promise<void> {
  await from.backup(to, { progress: () => 0x7fffffff });
}

/**
 * Writes a consistent copy of the store at `sourcePath` to `to` (which must not exist), through a
 * temporary file renamed into place, and checks it. The store may be serving meanwhile.
 */
export async function backupSqlite(sourcePath: string, to: string, opts: { busyTimeoutMs?: number } = {}): Promise<BackupSummary> {
  if (existsSync(to)) throw new ConflictError(`${to} exists; choose a new file (a backup never overwrites one)`);
  if (!existsSync(dirname(to))) throw new ValidationError(`the directory of ${to} does not exist`);
  const source = openSqliteDatabase(sourcePath, { create: false, ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}) });
  const tmp = `${to}.partial-${process.pid}`;
  try {
    // NOTE: created 0600 before SQLite writes a byte: the copy holds sealed secrets and token hashes.
    closeSync(openSync(tmp, 'wx', 0o600));
    await copy(source, tmp);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw mapSqliteError(e);
  } finally {
    source.close();
  }
  let summary: BackupSummary;
  try {
    const db = new Database(tmp, { fileMustExist: true });
    try {
      // One file, no -wal beside it.
      db.pragma('journal_mode = DELETE');
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new StoreUnavailableError(`the copy failed its integrity check: ${String(check)}`);
      summary = { path: to, bytes: 0, schemaVersion: schemaVersion(db), tables: tableCounts(db) };
    } finally {
      db.close();
    }
    renameSync(tmp, to);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw mapSqliteError(e);
  }
  return { ...summary, bytes: statSync(to).size };
}

/** A backup file opened read-only and checked: ours, intact, not newer than this program. */
export interface OpenedBackup {
  readonly summary: BackupSummary;
  /** The backup's key checks and sealed secrets, to check the master key against before restoring. */
  readonly keyChecks: KeyCheckStore;
  close(): void;
  /** Restores the backup into the store at `targetPath` (see restoreSqlite). */
  restoreInto(targetPath: string, opts: { replace: boolean; busyTimeoutMs?: number }): Promise<TableCounts>;
}

export function openBackup(path: string): OpenedBackup {
  if (!existsSync(path)) throw new ValidationError(`no backup file at ${path}`);
  let db: Db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new ValidationError(`${path} cannot be opened as a SQLite database: ${(e as Error).message}`);
  }
  let summary: BackupSummary;
  try {
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new ValidationError(`${path} failed its integrity check: ${String(check)}`);
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get()) {
      throw new ValidationError(`${path} is a SQLite database but not an ecs-console backup (no schema_migrations table)`);
    }
    const version = schemaVersion(db);
    const known = newestMigration(SQLITE_MIGRATIONS);
    if (version > known) throw new ValidationError(`${path}: ${schemaTooNewMessage(version, known)}`);
    summary = { path, bytes: statSync(path).size, schemaVersion: version, tables: tableCounts(db) };
  } catch (e) {
    db.close();
    if (e instanceof ValidationError) throw e;
    throw new ValidationError(`${path} cannot be read as a SQLite database: ${(e as Error).message}`);
  }
  return {
    summary,
    keyChecks: new SqliteKeyCheckStore(db),
    close: () => db.close(),
    restoreInto: (targetPath, opts) => restoreSqlite(db, targetPath, opts),
  };
}

/**
 * Writes `backup` over the store at `targetPath` with the backup API (the target's other
 * connections see the old store or the restored one, never a mix), then brings the schema up to
 * date. A target that holds projects, users, keys or servers is replaced only when `replace`.
 */
async function restoreSqlite(backup: Db, targetPath: string, opts: { replace: boolean; busyTimeoutMs?: number }): Promise<TableCounts> {
  const busy = opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {};
  if (existsSync(targetPath)) {
    const target = openSqliteDatabase(targetPath, { create: false, ...busy });
    try {
      const counts = tableCounts(target);
      const held = CONTENT_TABLES.filter((t) => (counts[t] ?? 0) > 0).map((t) => `${counts[t]} ${t}`);
      if (held.length > 0 && !opts.replace) {
        throw new ConflictError(`the store sqlite:${targetPath} holds ${held.join(', ')}; a restore replaces all of it: stop the service, then run restore again with --replace`);
      }
    } finally {
      target.close();
    }
  } else {
    ensureDataDir(dirname(targetPath));
    closeSync(openSync(targetPath, 'wx', 0o600));
  }
  try {
    await copy(backup, targetPath);
  } catch (e) {
    throw mapSqliteError(e);
  }
  // Migrates a backup from an earlier release, and checks what was written.
  const restored = openSqliteDatabase(targetPath, { create: false, ...busy });
  try {
    restrictFile(targetPath);
    return tableCounts(restored);
  } finally {
    restored.close();
  }
}
