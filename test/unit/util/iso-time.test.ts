/** isoTime(ms) writes exactly what Date.prototype.toISOString writes, across second and day boundaries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from '../../../src/util/iso-time.js';

test('isoTime equals toISOString: every ms around boundaries, random times, and out-of-range values', () => {
  const around = [0, 999, 1000, Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2028, 1, 29, 0, 0, 0, 0), Date.UTC(9999, 11, 31, 23, 59, 59, 995)];
  for (const t of around) {
    for (let ms = Math.max(0, t - 20); ms < t + 20; ms++) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
  for (let i = 0; i < 20_000; i++) {
    const ms = Math.floor(Math.random() * 4_102_444_800_000);
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
  // The cache of one second is not served for another.
  assert.equal(isoTime(5_000), '1970-01-01T00:00:05.000Z');
  assert.equal(isoTime(6_007), '1970-01-01T00:00:06.007Z');
  assert.equal(isoTime(5_070), '1970-01-01T00:00:05.070Z');
  // Outside the cached form's range: toISOString's own answer.
  for (const ms of [-1, -86_400_001, 1.5, 253_402_300_800_000, 8.64e15]) assert.equal(isoTime(ms), new Date(ms).toISOString());
  assert.throws(() => isoTime(Number.NaN), RangeError);
});
