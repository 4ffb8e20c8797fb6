/** The output ring (last 1 MiB, absolute byte cursors) and `length` as last N lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputRing, SERIAL_OUTPUT_BYTES, lastLines } from '../../../src/serial/output-ring.js';

test('the ring keeps the last bytes up to its capacity, addressed by absolute offsets', () => {
  const r = new OutputRing(10);
  r.append(Buffer.from('abcdef'));
  r.append(Buffer.from('ghij'));
  assert.deepEqual([r.startOffset, r.endOffset, r.snapshot().toString()], [0, 10, 'abcdefghij']);
  r.append(Buffer.from('klm'));
  assert.deepEqual([r.startOffset, r.endOffset, r.snapshot().toString()], [3, 13, 'defghijklm']);
  r.append(Buffer.from('0123456789ABC'));
  assert.deepEqual([r.startOffset, r.endOffset, r.snapshot().toString()], [16, 26, '3456789ABC']);
  assert.equal(SERIAL_OUTPUT_BYTES, 1024 * 1024);
});

test('since(cursor): only what is new; an old cursor says how much was missed; a future one gives nothing', () => {
  const r = new OutputRing(8);
  r.append(Buffer.from('hello '));
  const first = r.since();
  assert.deepEqual([first.data.toString(), first.start, first.end, first.missed], ['hello ', 0, 6, 0]);
  r.append(Buffer.from('world'));
  const next = r.since(first.end);
  assert.deepEqual([next.data.toString(), next.start, next.end, next.missed], ['world', 6, 11, 0]);
  const old = r.since(1);
  assert.deepEqual([old.data.toString(), old.start, old.missed], ['lo world', 3, 2]);
  assert.deepEqual([r.since(11).data.length, r.since(500).data.length, r.since(500).end], [0, 0, 11]);
});

test('a ring resumes from saved output (another node, a restart): offsets go on', () => {
  const r = new OutputRing(16, { endOffset: 5_000_000, data: Buffer.from('saved') });
  assert.deepEqual([r.startOffset, r.endOffset], [4_999_995, 5_000_000]);
  r.append(Buffer.from('+new'));
  assert.deepEqual([r.since(5_000_000).data.toString(), r.endOffset], ['+new', 5_000_004]);
});

test('many small appends stay bounded and in order', () => {
  const r = new OutputRing(1000);
  let all = '';
  for (let i = 0; i < 5000; i++) {
    const s = String(i % 10);
    r.append(Buffer.from(s));
    all += s;
  }
  assert.equal(r.snapshot().toString(), all.slice(-1000));
});

test('lastLines: the last N lines, a trailing newline ending the last one, CRLF kept', () => {
  const b = Buffer.from('one\r\ntwo\r\nthree\r\n');
  assert.equal(lastLines(b, 1).toString(), 'three\r\n');
  assert.equal(lastLines(b, 2).toString(), 'two\r\nthree\r\n');
  assert.equal(lastLines(b, 3).toString(), b.toString());
  assert.equal(lastLines(b, 30).toString(), b.toString());
  assert.equal(lastLines(b, 0).length, 0);
  assert.equal(lastLines(Buffer.from('a\nb\npartial'), 2).toString(), 'b\npartial');
  assert.equal(lastLines(Buffer.from('\n\n'), 1).toString(), '\n');
  assert.equal(lastLines(Buffer.alloc(0), 5).length, 0);
});
