/** A loop failing every 250 ms logs its first failure, a count each minute, and its recovery. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/clock.js';
import { StoreUnavailableError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { FailureStreak } from '../../../src/util/failure-streak.js';
import { LogCapture } from '../../helpers/stack.js';

test('an outage of 10 s polled every 250 ms: one warning with the error, then the recovery with the count', () => {
  const logs = new LogCapture();
  const clock = new ManualClock();
  const streak = new FailureStreak(createLogger({ level: 'info', destination: logs }), 'reading the change feed', clock);
  const lines = (): Array<{ level: string; msg: string; failures?: number; err?: { message: string } }> => logs.lines.map((l) => JSON.parse(l));
  streak.succeeded();
  assert.equal(logs.lines.length, 0, 'success without a streak says nothing');
  for (let i = 0; i < 40; i++) {
    streak.failed(new StoreUnavailableError('PostgreSQL unavailable: connect ECONNREFUSED'));
    clock.advance(250);
  }
  assert.equal(streak.failing, true);
  assert.equal(lines().length, 1);
  assert.equal(lines()[0]!.level, 'warn');
  assert.match(lines()[0]!.msg, /^reading the change feed failed/);
  assert.match(lines()[0]!.err!.message, /ECONNREFUSED/);
  streak.succeeded();
  assert.equal(streak.failing, false);
  assert.equal(lines().length, 2);
  assert.equal(lines()[1]!.level, 'info');
  assert.equal(lines()[1]!.failures, 40);
  assert.match(lines()[1]!.msg, /works again/);
});

test('a long outage: a count once a minute, and a new streak starts with a full warning again', () => {
  const logs = new LogCapture();
  const clock = new ManualClock();
  const streak = new FailureStreak(createLogger({ level: 'info', destination: logs }), 'the session heartbeat', clock);
  for (let i = 0; i < 5 * 60 * 4; i++) {
    streak.failed(new Error('down'));
    clock.advance(250);
  }
  const warnings = logs.lines.map((l) => JSON.parse(l) as { msg: string; failures?: number });
  assert.equal(warnings.length, 5, 'the first, then one a minute');
  assert.deepEqual(warnings.slice(1).map((w) => w.msg), Array(4).fill('the session heartbeat still failing'));
  assert.deepEqual(warnings.slice(1).map((w) => w.failures), [241, 481, 721, 961]);
  streak.succeeded();
  streak.failed(new Error('again'));
  assert.match(JSON.parse(logs.lines.at(-1)!).msg, /^the session heartbeat failed/);
});
