import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DamageMap } from '../../../src/demo/damage-map.js';

const all = { col: 0, row: 0, cols: 10, rows: 6 };

test('a new map is all dirty and comes out as one rectangle', () => {
  const d = new DamageMap(10, 6);
  assert.equal(d.isEmpty, false);
  assert.deepEqual(d.takeRects(all), [{ col: 0, row: 0, cols: 10, rows: 6 }]);
  assert.equal(d.isEmpty, true);
  assert.deepEqual(d.takeRects(all), []);
});

test('runs merge along a row and down identical columns', () => {
  const d = new DamageMap(10, 6);
  d.takeRects(all);
  for (const c of [2, 3, 4]) d.markCell(1, c);
  for (const c of [2, 3, 4]) d.markCell(2, c);
  d.markCell(2, 8);
  d.markCell(5, 0);
  assert.deepEqual(d.takeRects(all), [
    { col: 2, row: 1, cols: 3, rows: 2 },
    { col: 8, row: 2, cols: 1, rows: 1 },
    { col: 0, row: 5, cols: 1, rows: 1 },
  ]);
});

test('only cells inside the asked area are taken', () => {
  const d = new DamageMap(10, 6);
  d.takeRects(all);
  d.markCell(0, 0);
  d.markCell(5, 9);
  assert.deepEqual(d.takeRects({ col: 5, row: 3, cols: 5, rows: 3 }), [{ col: 9, row: 5, cols: 1, rows: 1 }]);
  assert.equal(d.isEmpty, false);
  d.clean({ col: 0, row: 0, cols: 1, rows: 1 });
  assert.equal(d.isEmpty, true);
});

test('a scroll moves the dirty bits with the text and dirties the new bottom row', () => {
  const d = new DamageMap(10, 6);
  d.takeRects(all);
  d.markCell(3, 4);
  d.scrolled(0, 5, true);
  assert.deepEqual(d.pendingScroll, { top: 0, bottom: 5, count: 1 });
  d.scrolled(0, 5, true);
  assert.deepEqual(d.takeScroll(), { top: 0, bottom: 5, count: 2 });
  assert.deepEqual(d.takeRects(all), [
    { col: 4, row: 1, cols: 1, rows: 1 },
    { col: 0, row: 3, cols: 10, rows: 2 },
  ]);
});

test('without CopyRect, or past the region height, a scroll dirties the whole region', () => {
  const d = new DamageMap(10, 6);
  d.takeRects(all);
  d.scrolled(0, 5, false);
  assert.equal(d.pendingScroll, undefined);
  assert.deepEqual(d.takeRects(all), [{ col: 0, row: 0, cols: 10, rows: 5 }]);
  for (let i = 0; i < 5; i++) d.scrolled(0, 5, true);
  assert.equal(d.pendingScroll, undefined);
  assert.deepEqual(d.takeRects(all), [{ col: 0, row: 0, cols: 10, rows: 5 }]);
  d.scrolled(0, 5, true);
  d.dropScroll();
  assert.deepEqual(d.takeRects(all), [{ col: 0, row: 0, cols: 10, rows: 5 }]);
});

test('many scattered cells come out as their bounding box', () => {
  const d = new DamageMap(80, 40);
  d.takeRects({ col: 0, row: 0, cols: 80, rows: 40 });
  for (let r = 1; r < 40; r += 2) for (let c = 3; c < 40; c += 4) d.markCell(r, c);
  assert.deepEqual(d.takeRects({ col: 0, row: 0, cols: 80, rows: 40 }), [{ col: 3, row: 1, cols: 37, rows: 39 }]);
  assert.equal(d.isEmpty, true);
});
