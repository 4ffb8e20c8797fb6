/** The node's default metrics: the event-loop lag is still measured, by a timer that wakes the loop rarely. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENT_LOOP_SAMPLE_MS, Metrics } from '../../src/metrics.js';

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} is exported`);
  return Number(m[1]);
}

test('the event-loop lag is sampled every 100 ms or less often (a relay thread is not woken 100 times a second), and still measured', async () => {
  assert.ok(EVENT_LOOP_SAMPLE_MS >= 100, `sampled every ${EVENT_LOOP_SAMPLE_MS} ms`);
  const metrics = new Metrics();
  await sleep(EVENT_LOOP_SAMPLE_MS * 4);
  const text = await metrics.registry.metrics();
  const min = gauge(text, 'ecs_console_nodejs_eventloop_lag_min_seconds');
  const p50 = gauge(text, 'ecs_console_nodejs_eventloop_lag_p50_seconds');
  // No sample yet would read as ~9.2e9 s (the histogram's empty minimum).
  assert.ok(min > 0 && min < 1, `lag min ${min} s: samples were taken`);
  assert.ok(p50 >= min && p50 < 1, `lag p50 ${p50} s`);
});

test('without default metrics there is no event-loop lag metric (and no timer for it)', async () => {
  const text = await new Metrics({ defaultMetrics: false }).registry.metrics();
  assert.doesNotMatch(text, /eventloop_lag/);
});
