/** The bounded gate in front of password hashing: slots, a first-come queue, shares per key, refusals at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyGate, GateFullError } from '../../../src/util/concurrency-gate.js';

/** A task that runs until the test lets it finish. */
function held(): { task: () => Promise<string>; started: () => boolean; finish: (v: string) => void; fail: (e: Error) => void } {
  let running = false;
  let settle!: { resolve: (v: string) => void; reject: (e: Error) => void };
  const done = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  return { task: () => ((running = true), done), started: () => running, finish: (v) => settle.resolve(v), fail: (e) => settle.reject(e) };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('runs maxRunning at once, queues maxQueued first come first served, refuses the rest at once', async () => {
  const gate = new ConcurrencyGate({ maxRunning: 2, maxQueued: 2, maxPerKey: 10 });
  const tasks = Array.from({ length: 4 }, held);
  const results = tasks.map((h, i) => gate.run(`k${i}`, h.task));
  // Observed at the end with allSettled; marked handled now, before the first one rejects.
  for (const r of results) r.catch(() => undefined);
  await turn();
  assert.deepEqual(tasks.map((h) => h.started()), [true, true, false, false]);
  assert.deepEqual(gate.load, { running: 2, queued: 2 });
  await assert.rejects(gate.run('k9', async () => 'never'), (e: unknown) => e instanceof GateFullError && e.reason === 'busy');
  tasks[1]!.finish('b');
  await turn();
  // The freed slot goes to the first in line.
  assert.deepEqual(tasks.map((h) => h.started()), [true, true, true, false]);
  tasks[0]!.fail(new Error('task failed'));
  await turn();
  assert.equal(tasks[3]!.started(), true, 'a failing task frees its slot too');
  tasks[2]!.finish('c');
  tasks[3]!.finish('d');
  const settled = await Promise.allSettled(results);
  assert.deepEqual(settled.map((r) => r.status), ['rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
  assert.deepEqual(gate.load, { running: 0, queued: 0 });
});

test('one key holds at most maxPerKey places, running or waiting; other keys are not affected', async () => {
  const gate = new ConcurrencyGate({ maxRunning: 1, maxQueued: 5, maxPerKey: 2 });
  const a1 = held();
  const a2 = held();
  const p1 = gate.run('a', a1.task);
  const p2 = gate.run('a', a2.task);
  await assert.rejects(gate.run('a', async () => 'never'), (e: unknown) => e instanceof GateFullError && e.reason === 'key');
  const b = held();
  const pb = gate.run('b', b.task);
  assert.deepEqual(gate.load, { running: 1, queued: 2 });
  a1.finish('1');
  await p1;
  // A finished task gives its key's place back.
  const a3 = held();
  const p3 = gate.run('a', a3.task);
  a2.finish('2');
  await p2;
  b.finish('b');
  await pb;
  a3.finish('3');
  assert.equal(await p3, '3');
  assert.deepEqual(gate.load, { running: 0, queued: 0 });
});

test('a queue of 0: only free slots run, everything else is refused', async () => {
  const gate = new ConcurrencyGate({ maxRunning: 1, maxQueued: 0, maxPerKey: 5 });
  const h = held();
  const p = gate.run('a', h.task);
  await assert.rejects(gate.run('b', async () => 'x'), GateFullError);
  h.finish('ok');
  assert.equal(await p, 'ok');
  assert.equal(await gate.run('b', async () => 'x'), 'x');
});

test('priority tasks wait in a line of their own, as long, and are served first', async () => {
  const gate = new ConcurrencyGate({ maxRunning: 1, maxQueued: 1, maxPerKey: 5 });
  const first = held();
  const p1 = gate.run('a', first.task);
  const stranger = held();
  const p2 = gate.run('b', stranger.task);
  // The ordinary line is full; the priority line is not.
  await assert.rejects(gate.run('c', async () => 'never'), (e: unknown) => e instanceof GateFullError && e.reason === 'busy');
  const known = held();
  const p3 = gate.run('d', known.task, true);
  await assert.rejects(gate.run('e', async () => 'never', true), (e: unknown) => e instanceof GateFullError && e.reason === 'busy');
  assert.deepEqual(gate.load, { running: 1, queued: 2 });
  first.finish('1');
  await p1;
  await turn();
  assert.equal(known.started(), true, 'the priority task, though it came later');
  assert.equal(stranger.started(), false);
  known.finish('3');
  await p3;
  await turn();
  assert.equal(stranger.started(), true);
  stranger.finish('2');
  assert.equal(await p2, '2');
});
