/**
 * Group commit on PostgreSQL: rows of one table inserted during one turn of the event loop go in
 * one statement (`INSERT ... SELECT * FROM unnest($1::type[], ...)`), one round trip and one
 * commit instead of one each. The busy paths write this way: a remote_console call's token and
 * audit row, a console session's audit rows. Each caller's promise settles once the statement
 * committed (its row is durable as before). When the statement fails on a row's own fault (a
 * duplicate key), every row of the batch is inserted alone, so that only that row's caller fails;
 * a failure of the store (unreachable, ...) fails the batch.
 */
import { ConflictError } from '../../errors.js';
import type { Sql } from './postgres-database.js';

interface Queued<T> {
  readonly row: T;
  resolve(): void;
  reject(e: unknown): void;
}

/** Rows per statement at most (PostgreSQL takes arrays of any length; this bounds one statement's work). */
const MAX_BATCH = 1000;

/**
 * Writes queued during one turn, run as one statement by `many` (a single one by `one`). When
 * `many` fails on a row's own fault (a conflict), each row is written alone, so that only its
 * caller fails; a failure of the store fails the batch.
 */
export class BatchedWrite<T> {
  private queue: Array<Queued<T>> = [];
  private scheduled = false;

  constructor(
    private readonly many: (rows: readonly T[]) => Promise<unknown>,
    private readonly one: (row: T) => Promise<unknown>,
  ) {}

  /** Writes `row` with the others of this turn; resolves once committed. */
  write(row: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) void this.run(all.slice(i, i + MAX_BATCH));
  }

  private async run(batch: Array<Queued<T>>): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0]!);
    try {
      await this.many(batch.map((b) => b.row));
    } catch (e) {
      if (!(e instanceof ConflictError)) {
        for (const b of batch) b.reject(e);
        return;
      }
      // One row's own fault: each alone, so that only its caller hears of it.
      await Promise.all(batch.map((b) => this.alone(b)));
      return;
    }
    for (const b of batch) b.resolve();
  }

  private async alone(b: Queued<T>): Promise<void> {
    try {
      await this.one(b.row);
      b.resolve();
    } catch (e) {
      b.reject(e);
    }
  }
}

/**
 * Inserts into `table`: `columns` (name and PostgreSQL type, in the order `values` gives them)
 * make the batch statement (unnest of one array per column) and the single-row one.
 */
export function batchedInsert<T>(db: Sql, table: string, columns: ReadonlyArray<readonly [string, string]>, values: (row: T) => readonly unknown[]): BatchedWrite<T> {
  const names = columns.map(([n]) => n).join(', ');
  const many = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${columns.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})`;
  const one = `INSERT INTO ${table} (${names}) VALUES (${columns.map(([, t], i) => `$${i + 1}::${t}`).join(', ')})`;
  return new BatchedWrite<T>((rows) => {
    const cols = rows.map(values);
    return db.count(many, cols[0]!.map((_, c) => cols.map((r) => r[c])));
  }, (row) => db.count(one, values(row)));
}

interface PendingRead<K, V> {
  readonly key: K;
  resolve(v: V): void;
  reject(e: unknown): void;
}

/**
 * Point reads asked during one turn of the event loop answered by one statement (the busy path:
 * every signed call reads its (AK, address) lockout state). A read runs after it was asked, as a
 * read of its own would: nothing committed before the call is missed.
 */
export class BatchedRead<K, V> {
  private queue: Array<PendingRead<K, V>> = [];
  private scheduled = false;

  constructor(
    /** Answers every key of the batch, in order. */
    private readonly readMany: (keys: readonly K[]) => Promise<V[]>,
  ) {}

  read(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.queue.push({ key, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) {
      const batch = all.slice(i, i + MAX_BATCH);
      this.readMany(batch.map((b) => b.key)).then(
        (values) => batch.forEach((b, k) => b.resolve(values[k]!)),
        (e: unknown) => batch.forEach((b) => b.reject(e)),
      );
    }
  }
}
