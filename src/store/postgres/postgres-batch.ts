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

export class BatchedInsert<T> {
  private queue: Array<Queued<T>> = [];
  private scheduled = false;
  private readonly many: string;
  private readonly one: string;

  /**
   * `table` and `columns` (name and PostgreSQL type, in the order `values` gives them) make both
   * statements: the batch (unnest of one array per column) and the single-row one.
   */
  constructor(
    private readonly db: Sql,
    table: string,
    columns: ReadonlyArray<readonly [string, string]>,
    private readonly values: (row: T) => readonly unknown[],
  ) {
    const names = columns.map(([n]) => n).join(', ');
    this.many = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${columns.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})`;
    this.one = `INSERT INTO ${table} (${names}) VALUES (${columns.map(([, t], i) => `$${i + 1}::${t}`).join(', ')})`;
  }

  /** Inserts `row` with the others of this turn; resolves once committed. */
  insert(row: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
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
    for (let i = 0; i < all.length; i += MAX_BATCH) void this.run(all.slice(i, i + MAX_BATCH));
  }

  private async run(batch: Array<Queued<T>>): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0]!);
    const rows = batch.map((b) => this.values(b.row));
    const columns = rows[0]!.map((_, c) => rows.map((r) => r[c]));
    try {
      await this.db.count(this.many, columns);
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
      await this.db.count(this.one, this.values(b.row));
      b.resolve();
    } catch (e) {
      b.reject(e);
    }
  }
}
