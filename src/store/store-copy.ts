/**
 * `store copy`: moves a single node's SQLite store into PostgreSQL, for a fleet. Both schemas are
 * brought to this program's version first and must then hold the same tables and columns. The
 * source is read in one read transaction (one moment of it); the target is written in one
 * transaction that is committed only when every table's row count equals the source's, so a
 * failed or refused copy leaves the target as it was.
 */
import type { Logger } from '../log.js';
import { ConflictError, StoreUnavailableError, ValidationError } from '../errors.js';
import { describePostgresUrl, PostgresDatabase, type Sql } from './postgres/postgres-database.js';
import { mapSqliteError, openSqliteDatabase, type Db } from './sqlite/sqlite-database.js';
import { tableCounts, type TableCounts } from './sqlite/sqlite-backup.js';

export interface CopyOptions {
  /** Empty a target that holds rows first (else such a target is refused). */
  readonly replace: boolean;
  readonly busyTimeoutMs?: number;
  readonly log?: Logger;
  /** Rows read and written per statement (bounded by PostgreSQL's 65,535 parameters). */
  readonly batchRows?: number;
}

export interface CopyResult {
  readonly from: string;
  readonly to: string;
  /** Rows copied per table, equal in source and target. */
  readonly tables: TableCounts;
}

/** Tables the migrations keep: never copied (each side records its own). */
const OWN = new Set(['schema_migrations']);

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function sqliteTables(db: Db): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
  for (const n of names) {
    if (OWN.has(n)) continue;
    out.set(n, (db.prepare(`PRAGMA table_info(${quote(n)})`).all() as Array<{ name: string }>).map((c) => c.name));
  }
  return out;
}

/** Tables in an order where every table comes after those its foreign keys point to. */
function insertOrder(db: Db, tables: readonly string[]): string[] {
  const deps = new Map(tables.map((t) => [t, new Set((db.prepare(`PRAGMA foreign_key_list(${quote(t)})`).all() as Array<{ table: string }>).map((f) => f.table).filter((x) => x !== t))]));
  const out: string[] = [];
  const visit = (t: string, path: Set<string>): void => {
    if (out.includes(t)) return;
    if (path.has(t)) throw new ValidationError(`store copy: foreign keys form a cycle through ${t}`);
    path.add(t);
    for (const d of deps.get(t) ?? []) if (deps.has(d)) visit(d, path);
    path.delete(t);
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t, new Set());
  return out;
}

async function postgresTables(sql: Sql): Promise<Map<string, string[]>> {
  const rows = await sql.rows(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
  );
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const t = String(r['table_name']);
    if (OWN.has(t)) continue;
    out.set(t, [...(out.get(t) ?? []), String(r['column_name'])]);
  }
  return out;
}

async function postgresCounts(sql: Sql, tables: readonly string[]): Promise<TableCounts> {
  const out: TableCounts = {};
  for (const t of tables) out[t] = Number((await sql.one(`SELECT COUNT(*) AS n FROM ${quote(t)}`))?.['n']);
  return out;
}

/** Both schemas hold the same tables with the same columns (any order), or a ValidationError says what differs. */
function sameSchema(source: Map<string, string[]>, target: Map<string, string[]>): void {
  const diffs: string[] = [];
  for (const [t, cols] of source) {
    const other = target.get(t);
    if (!other) {
      diffs.push(`table ${t} is missing in the target`);
      continue;
    }
    const a = [...cols].sort().join(',');
    const b = [...other].sort().join(',');
    if (a !== b) diffs.push(`table ${t}: columns (${a}) in the source, (${b}) in the target`);
  }
  for (const t of target.keys()) if (!source.has(t)) diffs.push(`table ${t} is missing in the source`);
  if (diffs.length > 0) throw new ValidationError(`store copy: the schemas differ: ${diffs.join('; ')}`);
}

/**
 * Copies the SQLite store at `sqlitePath` into the PostgreSQL database at `postgresUrl` (its schema
 * created or brought up to date). Refuses (ConflictError) a target holding rows unless `replace`.
 */
export async function copySqliteToPostgres(sqlitePath: string, postgresUrl: string, opts: CopyOptions): Promise<CopyResult> {
  const source = openSqliteDatabase(sqlitePath, { create: false, ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}) });
  const to = describePostgresUrl(postgresUrl);
  let target: PostgresDatabase | null = null;
  try {
    target = await PostgresDatabase.open(postgresUrl, { create: true, applicationName: 'ecs-console-store-copy', ...(opts.log ? { log: opts.log } : {}) });
    const columns = sqliteTables(source);
    sameSchema(columns, await postgresTables(target));
    const order = insertOrder(source, [...columns.keys()]);
    // One moment of the source: a read transaction over every table (WAL: writers go on meanwhile).
    source.exec('BEGIN');
    try {
      const expected = tableCounts(source);
      const tables = await target.transaction(async (tx) => {
        const held = Object.entries(await postgresCounts(tx, order)).filter(([, n]) => n > 0);
        if (held.length > 0) {
          if (!opts.replace) {
            throw new ConflictError(`the target ${to} is not empty (${held.map(([t, n]) => `${n} ${t}`).join(', ')}); copy into an empty database, or add --replace to empty it first`);
          }
          await tx.count(`TRUNCATE ${order.map(quote).join(', ')}`);
        }
        for (const t of order) await copyTable(source, tx, t, columns.get(t)!, opts.batchRows ?? 500);
        await resetSequences(tx);
        const copied = await postgresCounts(tx, order);
        const wrong = order.filter((t) => copied[t] !== expected[t]);
        if (wrong.length > 0) {
          throw new StoreUnavailableError(`store copy: row counts differ after copying (${wrong.map((t) => `${t}: ${expected[t]} in the source, ${copied[t]} in the target`).join('; ')}); nothing was committed`);
        }
        return copied;
      });
      return { from: `sqlite:${sqlitePath}`, to, tables };
    } finally {
      source.exec('COMMIT');
    }
  } catch (e) {
    throw mapSqliteError(e);
  } finally {
    source.close();
    await target?.close();
  }
}

async function copyTable(source: Db, tx: Sql, table: string, columns: readonly string[], batchRows: number): Promise<void> {
  const per = Math.max(1, Math.min(batchRows, Math.floor(60_000 / columns.length)));
  const read = source.prepare(`SELECT rowid AS "__rowid", ${columns.map(quote).join(', ')} FROM ${quote(table)} WHERE rowid > ? ORDER BY rowid LIMIT ?`);
  const head = `INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES `;
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const rows = read.all(after, per) as Array<Record<string, unknown>>;
    if (rows.length === 0) return;
    const params: unknown[] = [];
    const tuples = rows.map((r) => `(${columns.map((c) => {
      params.push(r[c]);
      return `$${params.length}`;
    }).join(', ')})`);
    await tx.count(head + tuples.join(', '), params);
    after = Number(rows[rows.length - 1]!['__rowid']);
  }
}

/** Sequences (bigserial ids) continue after the copied ids, so that the next insert does not collide. */
async function resetSequences(tx: Sql): Promise<void> {
  const serial = await tx.rows(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'`,
  );
  for (const r of serial) {
    const t = quote(String(r['table_name']));
    const c = quote(String(r['column_name']));
    await tx.one(`SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX(${c}) FROM ${t}), 0) + 1, false)`, [String(r['table_name']), String(r['column_name'])]);
  }
}
