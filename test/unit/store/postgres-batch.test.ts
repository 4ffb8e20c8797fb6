/**
 * PostgreSQL group commit (the statements themselves run against a real PostgreSQL in
 * system/postgres-store and system/fleet): writes and reads of one turn go in one statement, a
 * row's own conflict fails only its caller, a store failure fails the batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConflictError, StoreUnavailableError } from '../../../src/errors.js';
import { BatchedRead, BatchedWrite, batchedInsert } from '../../../src/store/postgres/postgres-batch.js';
import type { Sql } from '../../../src/store/postgres/postgres-database.js';

test('writes of one turn go in one statement; later turns in the next', async () => {
  const batches: string[][] = [];
  const w = new BatchedWrite<string>(async (rows) => batches.push([...rows]), async (row) => batches.push([row]));
  await Promise.all(['a', 'b', 'c'].map((x) => w.write(x)));
  await w.write('d');
  assert.deepEqual(batches, [['a', 'b', 'c'], ['d']]);
});

test("a row's own conflict fails only its caller; a store failure fails the whole batch", async () => {
  const w = new BatchedWrite<string>(
    async (rows) => {
      if (rows.includes('dup')) throw new ConflictError('duplicate');
    },
    async (row) => {
      if (row === 'dup') throw new ConflictError('duplicate');
    },
  );
  const results = await Promise.allSettled(['a', 'dup', 'b'].map((x) => w.write(x)));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  const down = new BatchedWrite<string>(async () => {
    throw new StoreUnavailableError('down');
  }, async () => undefined);
  const all = await Promise.allSettled(['x', 'y'].map((x) => down.write(x)));
  assert.ok(all.every((r) => r.status === 'rejected' && r.reason instanceof StoreUnavailableError));
});

test('batchedInsert: one unnest statement with one array per column, or a single-row insert', async () => {
  const seen: Array<{ text: string; params: readonly unknown[] }> = [];
  const db: Sql = {
    rows: async () => [],
    one: async () => null,
    count: async (text, params = []) => (seen.push({ text, params }), 1),
  };
  const ins = batchedInsert<{ a: number; b: string }>(db, 't', [['a', 'bigint'], ['b', 'text']], (r) => [r.a, r.b]);
  await Promise.all([ins.write({ a: 1, b: 'x' }), ins.write({ a: 2, b: 'y' })]);
  await ins.write({ a: 3, b: 'z' });
  assert.equal(seen[0]!.text, 'INSERT INTO t (a, b) SELECT * FROM unnest($1::bigint[], $2::text[])');
  assert.deepEqual(seen[0]!.params, [[1, 2], ['x', 'y']]);
  assert.equal(seen[1]!.text, 'INSERT INTO t (a, b) VALUES ($1::bigint, $2::text)');
  assert.deepEqual(seen[1]!.params, [3, 'z']);
});

test('reads of one turn are answered by one call, each with its own value, after they were asked', async () => {
  const calls: number[][] = [];
  let version = 0;
  const r = new BatchedRead<number, string>(async (keys) => (calls.push([...keys]), keys.map((k) => `${k}@${version}`)));
  const pending = Promise.all([1, 2, 3].map((k) => r.read(k)));
  // A change committed after the reads were asked and before the batch runs is seen by them.
  version = 1;
  assert.deepEqual(await pending, ['1@1', '2@1', '3@1']);
  assert.deepEqual(calls, [[1, 2, 3]]);
  const failing = new BatchedRead<number, string>(async () => {
    throw new StoreUnavailableError('down');
  });
  await assert.rejects(failing.read(1), StoreUnavailableError);
});
