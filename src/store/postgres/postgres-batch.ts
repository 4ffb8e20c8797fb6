/**
 * Group commit on PostgreSQL: rows of one table inserted during one turn of the event loop go in
 * one statement (`INSERT ... SELECT * FROM unnest($1::type[], ...)`), one round trip and one
 * commit instead of one each. The busy paths write this way: a remote_console call's token and
 * audit row, a console session's audit rows. Each caller's promise settles once the statement
 * committed (its row is durable as before). When the statement fails on a row's own fault (a
 * duplicate key), every row of the batch is inserted alone, so that only that row's caller fails;
 * a failure of the store (unreachable, ...) fails the batch.
 *
 * One statement of each kind is in flight at a time: what is asked while it runs waits for it and
 * goes in the next statement, however many turns it spans (a turn alone holds one or two setups
 * of 25 at once, a round trip spans many). Under load the batches grow with the round trip instead
 * of the statements multiplying; alone, a call still goes at the next turn.
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
 * The queue of one kind of statement: flushed at the next turn when no statement of the kind is in
 * flight, else when the one in flight settles (see the file's comment).
 */
class GroupQueue<Q> {
  private queue: Q[] = [];
  private scheduled = false;
  private inFlight = false;

  constructor(private readonly run: (batch: Q[]) => Promise<void>) {}

  push(q: Q): void {
    this.queue.push(q);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, MAX_BATCH);
    this.inFlight = true;
    // `run` settles every caller of the batch itself and never rejects.
    void this.run(batch).finally(() => {
      this.inFlight = false;
      this.schedule();
    });
  }
}

/** A writer's batch statement for `rows`, its parameters numbered from `$first`. */
export type BatchSql<T> = (rows: readonly T[], first: number) => { text: string; params: unknown[] };

/**
 * Writes queued during one turn (or while the previous statement ran), run as one statement by
 * `many` (a single one by `one`). When `many` fails on a row's own fault (a conflict), each row is
 * written alone, so that only its caller fails; a failure of the store fails the batch.
 * In a WriteGroup, the writes of several writers go together (see WriteGroup).
 */
export class BatchedWrite<T> {
  private readonly queue: GroupQueue<Queued<T>> | null;

  constructor(
    private readonly many: (rows: readonly T[]) => Promise<unknown>,
    private readonly one: (row: T) => Promise<unknown>,
    private readonly grouped?: { readonly group: WriteGroup; readonly sql: BatchSql<T> },
  ) {
    this.queue = grouped ? null : new GroupQueue<Queued<T>>((batch) => this.run(batch));
  }

  /** Writes `row` with the others asked before the next statement goes; resolves once committed. */
  write(row: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const q = { row, resolve, reject };
      if (this.queue) this.queue.push(q);
      else this.grouped!.group.push(this, q);
    });
  }

  /** This writer's part of a group's statement. */
  statement(rows: readonly T[], first: number): { text: string; params: unknown[] } {
    return this.grouped!.sql(rows, first);
  }

  /** Writes a batch of this writer alone; settles every caller, never rejects. */
  async run(batch: ReadonlyArray<Queued<T>>): Promise<void> {
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
 * The writes of several writers (tables) asked meanwhile in one statement, one data-modifying
 * `WITH` part each (one round trip, one commit): a console session's row and its audit row, a
 * console token and its audit row. One such statement is in flight at a time. When the batch is of
 * one writer, that writer's own statements run; when the joint statement fails on a row's own
 * fault (a conflict), each writer's rows are written apart (and alone if need be), so that only
 * that row's caller fails; a failure of the store fails the batch.
 * NOTE: the parts of one statement see the same snapshot, so two writes of one row must never meet
 * in a batch: a session's delete is asked only once its insert settled (proxy/session-records.ts).
 */
export class WriteGroup {
  private readonly queue = new GroupQueue<{ readonly writer: BatchedWrite<unknown>; readonly q: Queued<unknown> }>((batch) => this.run(batch));

  constructor(private readonly db: Sql) {}

  push<T>(writer: BatchedWrite<T>, q: Queued<T>): void {
    this.queue.push({ writer: writer as BatchedWrite<unknown>, q: q as Queued<unknown> });
  }

  private async run(batch: ReadonlyArray<{ readonly writer: BatchedWrite<unknown>; readonly q: Queued<unknown> }>): Promise<void> {
    const byWriter = new Map<BatchedWrite<unknown>, Array<Queued<unknown>>>();
    for (const { writer, q } of batch) {
      const list = byWriter.get(writer);
      if (list) list.push(q);
      else byWriter.set(writer, [q]);
    }
    if (byWriter.size === 1) {
      const [writer, qs] = [...byWriter][0]!;
      return writer.run(qs);
    }
    const parts: string[] = [];
    const params: unknown[] = [];
    let built = false;
    try {
      for (const [writer, qs] of byWriter) {
        const s = writer.statement(qs.map((q) => q.row), params.length + 1);
        parts.push(`w${parts.length} AS (${s.text})`);
        params.push(...s.params);
      }
      built = true;
      await this.db.count(`WITH ${parts.join(', ')} SELECT 1`, params);
    } catch (e) {
      if (built && !(e instanceof ConflictError)) {
        for (const { q } of batch) q.reject(e);
        return;
      }
      // A row's own fault (a conflict, or a value its writer cannot put in a statement): each
      // writer apart, so that only that row's callers hear of it and nothing is left unsettled.
      await Promise.all([...byWriter].map(([writer, qs]) => writer.run(qs)));
      return;
    }
    for (const { q } of batch) q.resolve();
  }
}

/**
 * Inserts into `table`: `columns` (name and PostgreSQL type, in the order `values` gives them)
 * make the batch statement (unnest of one array per column) and the single-row one.
 */
export function batchedInsert<T>(
  db: Sql, table: string, columns: ReadonlyArray<readonly [string, string]>, values: (row: T) => readonly unknown[], group?: WriteGroup,
): BatchedWrite<T> {
  const names = columns.map(([n]) => n).join(', ');
  const manyFrom = (first: number): string => `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${columns.map(([, t], i) => `$${i + first}::${t}[]`).join(', ')})`;
  const many = manyFrom(1);
  const one = `INSERT INTO ${table} (${names}) VALUES (${columns.map(([, t], i) => `$${i + 1}::${t}`).join(', ')})`;
  const arrays = (rows: readonly T[]): unknown[][] => {
    const cols = rows.map(values);
    return columns.map((_, c) => cols.map((r) => r[c]));
  };
  return new BatchedWrite<T>((rows) => db.count(many, arrays(rows)), (row) => db.count(one, values(row)),
    group ? { group, sql: (rows, first) => ({ text: manyFrom(first), params: arrays(rows) }) } : undefined);
}

interface PendingRead<K, V> {
  readonly key: K;
  resolve(v: V): void;
  reject(e: unknown): void;
}

/**
 * Point reads asked during one turn of the event loop (or while the previous statement ran)
 * answered by one statement (the busy paths: every signed call reads its (AK, address) lockout
 * state, every console setup its token). A read runs after it was asked, as a read of its own
 * would: nothing committed before the call is missed.
 */
export class BatchedRead<K, V> {
  private readonly queue = new GroupQueue<PendingRead<K, V>>(async (batch) => {
    let values: V[];
    try {
      values = await this.readMany(batch.map((b) => b.key));
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, k) => b.resolve(values[k]!));
  });

  constructor(
    /** Answers every key of the batch, in order. */
    private readonly readMany: (keys: readonly K[]) => Promise<V[]>,
  ) {}

  read(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => this.queue.push({ key, resolve, reject }));
  }
}
