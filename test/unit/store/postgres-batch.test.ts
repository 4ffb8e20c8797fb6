/**
 * PostgreSQL group commit (the statements themselves run against a real PostgreSQL in
 * system/postgres-store and system/fleet): writes and reads of one turn go in one statement, a
 * row's own conflict fails only its caller, a store failure fails the batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConflictError, StoreUnavailableError } from '../../../src/errors.js';
import { BatchedRead, BatchedWrite, batchedInsert, WriteGroup } from '../../../src/store/postgres/postgres-batch.js';
import type { Sql } from '../../../src/store/postgres/postgres-database.js';
import { PostgresConsoleTokenStore } from '../../../src/store/postgres/postgres-stores.js';

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

test('while a statement is in flight, what later turns ask waits for it and goes in one statement', async () => {
  const batches: string[][] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => (release = r));
  const w = new BatchedWrite<string>(async (rows) => {
    batches.push([...rows]);
    if (batches.length === 1) await first;
  }, async (row) => {
    batches.push([row]);
    if (batches.length === 1) await first;
  });
  const a = w.write('a');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches, [['a']]);
  // Three more turns while 'a' is in flight: no statement of their own.
  const later: Array<Promise<void>> = [];
  for (const x of ['b', 'c', 'd']) {
    later.push(w.write(x));
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(batches, [['a']]);
  release();
  await Promise.all([a, ...later]);
  assert.deepEqual(batches, [['a'], ['b', 'c', 'd']]);

  const calls: number[][] = [];
  let answer!: () => void;
  const held = new Promise<void>((r) => (answer = r));
  const r = new BatchedRead<number, number>(async (keys) => {
    calls.push([...keys]);
    if (calls.length === 1) await held;
    return keys.map((k) => k * 10);
  });
  const one = r.read(1);
  await new Promise((res) => setImmediate(res));
  const two = r.read(2);
  await new Promise((res) => setImmediate(res));
  const three = r.read(3);
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(calls, [[1]]);
  answer();
  assert.deepEqual(await Promise.all([one, two, three]), [10, 20, 30]);
  assert.deepEqual(calls, [[1], [2, 3]]);
});

test('a read that throws at once fails its batch and does not stall the reads after it', async () => {
  let n = 0;
  const r = new BatchedRead<number, number>((keys) => {
    if (n++ === 0) throw new StoreUnavailableError('down');
    return Promise.resolve(keys.map((k) => k));
  });
  await assert.rejects(r.read(1), StoreUnavailableError);
  assert.equal(await r.read(2), 2);
});

test("console token reads asked together (every setup's peek) are one statement, each answered with its own row", async () => {
  const seen: Array<{ text: string; params: readonly unknown[] }> = [];
  const row = (hash: string): Record<string, unknown> => ({
    hash, server_id: `s-${hash}`, project_id: 'p', kind: 'vnc', console_revision: 1, issued_at: 1, expires_at: 2, consumed_at: null, consumed_by: null,
    revoked_at: null, revoked_reason: null, issued_by: null, issued_by_user: null,
  });
  const db: Sql = {
    rows: async (text, params = []) => (seen.push({ text, params }), (params[0] as string[]).filter((h) => h !== 'missing').map(row)),
    one: async (text, params = []) => (seen.push({ text, params }), params[0] === 'missing' ? null : row(params[0] as string)),
    count: async () => 0,
  };
  const store = new PostgresConsoleTokenStore(db);
  const got = await Promise.all(['a', 'missing', 'b'].map((h) => store.getConsoleToken(h)));
  assert.deepEqual(got.map((t) => t?.serverId ?? null), ['s-a', null, 's-b']);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]!.params, [['a', 'missing', 'b']]);
  assert.equal((await store.getConsoleToken('c'))?.serverId, 's-c');
});

test('a write group: the writes of several tables asked together go in one statement, parameters renumbered; one table alone uses its own', async () => {
  const seen: Array<{ text: string; params: readonly unknown[] }> = [];
  let conflictOn: string | null = null;
  const db: Sql = {
    rows: async () => [],
    one: async () => null,
    count: async (text, params = []) => {
      seen.push({ text, params });
      if (conflictOn !== null && JSON.stringify(params).includes(conflictOn)) throw new ConflictError('duplicate');
      return 1;
    },
  };
  const group = new WriteGroup(db);
  const a = batchedInsert<{ x: number }>(db, 'a', [['x', 'bigint']], (r) => [r.x], group);
  const b = batchedInsert<{ y: string; z: string }>(db, 'b', [['y', 'text'], ['z', 'text']], (r) => [r.y, r.z], group);
  await Promise.all([a.write({ x: 1 }), b.write({ y: 'p', z: 'q' }), a.write({ x: 2 })]);
  assert.deepEqual(seen, [{
    text: 'WITH w0 AS (INSERT INTO a (x) SELECT * FROM unnest($1::bigint[])), w1 AS (INSERT INTO b (y, z) SELECT * FROM unnest($2::text[], $3::text[])) SELECT 1',
    params: [[1, 2], ['p'], ['q']],
  }]);
  seen.length = 0;
  await b.write({ y: 'r', z: 's' });
  assert.deepEqual(seen, [{ text: 'INSERT INTO b (y, z) VALUES ($1::text, $2::text)', params: ['r', 's'] }]);
  // A row's own conflict: each table apart, then each row alone; only its caller fails.
  seen.length = 0;
  conflictOn = 'dup';
  const results = await Promise.allSettled([a.write({ x: 3 }), b.write({ y: 'dup', z: 't' }), b.write({ y: 'u', z: 'v' })]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.ok(seen.some((x) => x.text === 'INSERT INTO a (x) VALUES ($1::bigint)' && (x.params[0] as unknown) === 3));
  assert.ok(seen.some((x) => x.text === 'INSERT INTO b (y, z) VALUES ($1::text, $2::text)' && (x.params[0] as unknown) === 'u'));
});

test('WriteGroup: a row its writer cannot put in a statement fails only that writer\'s callers, and every caller settles', async () => {
  const seen: string[] = [];
  const db: Sql = {
    rows: async () => [],
    one: async () => null,
    count: async (text) => (seen.push(text), 1),
  };
  const group = new WriteGroup(db);
  // A value that JSON cannot serialize, as an audit detail holding a BigInt would be.
  const a = batchedInsert<{ detail: unknown }>(db, 'a', [['detail', 'text']], (r) => [JSON.stringify(r.detail)], group);
  const b = batchedInsert<{ y: string }>(db, 'b', [['y', 'text']], (r) => [r.y], group);
  const settled = Promise.allSettled([a.write({ detail: { n: 1n } }), b.write({ y: 'p' }), a.write({ detail: { n: 2 } })]);
  const results = await Promise.race([settled, new Promise<'hung'>((resolve) => setTimeout(resolve, 2000, 'hung').unref())]);
  assert.notEqual(results, 'hung', 'every caller of the batch settles');
  assert.deepEqual((results as PromiseSettledResult<void>[]).map((r) => r.status), ['rejected', 'fulfilled', 'rejected']);
  assert.ok(seen.includes('INSERT INTO b (y) VALUES ($1::text)'), "the other writer's row is written");
});
