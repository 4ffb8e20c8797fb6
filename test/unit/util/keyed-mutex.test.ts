/** KeyedMutex (src/util/keyed-mutex.ts): one holder per key, in arrival order; an aborted waiter leaves its place. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMutex } from '../../../src/util/keyed-mutex.js';

test('acquire: holders of one key in arrival order, other keys free; release twice is once; the key is forgotten when free', async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const first = await m.acquire('a');
  const second = m.acquire('a').then((release) => (order.push('second'), release));
  const third = m.acquire('a').then((release) => (order.push('third'), release));
  const other = await m.acquire('b');
  order.push('b');
  other();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['b'], 'a is held');
  first();
  first();
  const r2 = await second;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['b', 'second'], 'the third waits for the second, not for a second release of the first');
  r2();
  (await third)();
  assert.deepEqual(order, ['b', 'second', 'third']);
  assert.equal(m.size, 0);
});

test('acquire: a waiter whose signal aborts rejects at once; the one behind it still waits for the holder', async () => {
  const m = new KeyedMutex();
  const holder = await m.acquire('k');
  const ac = new AbortController();
  const aborted = m.acquire('k', ac.signal);
  let behind = false;
  const next = m.acquire('k').then((release) => ((behind = true), release));
  ac.abort(new Error('gone'));
  await assert.rejects(aborted, /gone/);
  await new Promise((r) => setImmediate(r));
  assert.equal(behind, false);
  holder();
  (await next)();
  assert.equal(behind, true);
  assert.equal(m.size, 0);
});
