import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { ProtocolError } from '../../../src/errors.js';
import { ByteReader, ConnectionClosedError } from '../../../src/rfb/byte-reader.js';
import { chunkings, tick } from '../../helpers/rfb-split.js';

test('reads exact lengths and integers at every split point and byte by byte', async () => {
  const input = Buffer.from('0102' + 'a1b2' + 'deadbeef' + 'fffffffe' + '6869' + '7a7a', 'hex');
  for (const { label, chunks } of chunkings(input)) {
    const r = new ByteReader();
    const values = (async () => [
      await r.readU8(),
      await r.readU8(),
      await r.readU16(),
      await r.readU32(),
      await r.readS32(),
      (await r.readExactly(2)).toString(),
    ])();
    for (const c of chunks) {
      r.push(c);
      await tick();
    }
    assert.deepEqual(await values, [1, 2, 0xa1b2, 0xdeadbeef, -2, 'hi'], label);
    assert.equal(r.takeRemainder().toString(), 'zz', label);
    assert.equal(r.bufferedLength, 0);
  }
});

test('a read inside one chunk is a view, not a copy', async () => {
  const r = new ByteReader();
  const chunk = Buffer.from('abcdef');
  r.push(chunk);
  const got = await r.readExactly(3);
  assert.equal(got.buffer, chunk.buffer);
});

test('a read over the cap is refused before anything is allocated or awaited', async () => {
  const r = new ByteReader({ maxReadLength: 1000 });
  await assert.rejects(r.readExactly(1001), (e: unknown) => e instanceof ProtocolError && /exceeds the limit of 1000/.test(e.message));
  await assert.rejects(new ByteReader().readExactly(0xffffffff), /exceeds the limit of 1048576/);
});

test('end() rejects a waiting read; end(err) passes the error', async () => {
  const r = new ByteReader();
  const p = r.readExactly(4);
  r.push(Buffer.from('ab'));
  r.end();
  await assert.rejects(p, (e: unknown) => e instanceof ConnectionClosedError && e.wanted === 4 && e.had === 2);
  await assert.rejects(r.readU8().then(() => r.readU8()).then(() => r.readU8()), ConnectionClosedError);
  const r2 = new ByteReader();
  const boom = new Error('ECONNRESET');
  const p2 = r2.readU32();
  r2.end(boom);
  await assert.rejects(p2, (e) => e === boom);
});

test('an aborted signal rejects the read with its reason and the reader stays usable', async () => {
  const r = new ByteReader();
  const ac = new AbortController();
  const p = r.readExactly(2, { signal: ac.signal });
  ac.abort(new Error('too slow'));
  await assert.rejects(p, /too slow/);
  await assert.rejects(r.readU8({ signal: ac.signal }), /too slow/);
  r.push(Buffer.from('x'));
  assert.equal(await r.readU8(), 0x78);
  const late = new AbortController();
  const timer = setTimeout(() => late.abort(new Error('timed out')), 5);
  await assert.rejects(r.readExactly(1, { signal: late.signal }), /timed out/);
  clearTimeout(timer);
});

test('the reads that wait with one signal share one abort listener, dropped when the reader hands over or ends', async () => {
  const r = new ByteReader();
  const ac = new AbortController();
  let added = 0;
  const add = ac.signal.addEventListener.bind(ac.signal);
  ac.signal.addEventListener = ((...a: Parameters<AbortSignal['addEventListener']>) => {
    added++;
    add(...a);
  }) as AbortSignal['addEventListener'];
  for (let i = 0; i < 3; i++) {
    const p = r.readU8({ signal: ac.signal });
    r.push(Buffer.from([i]));
    assert.equal(await p, i);
  }
  assert.equal(added, 1);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
  r.push(Buffer.from('rest'));
  assert.equal(r.takeRemainder().toString(), 'rest');
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);

  // Another signal: the first one's listener goes, the read waits on the second's.
  const other = new ByteReader();
  const a = new AbortController();
  const b = new AbortController();
  const first = other.readU8({ signal: a.signal });
  other.push(Buffer.from([1]));
  await first;
  const second = other.readU8({ signal: b.signal });
  assert.equal(getEventListeners(a.signal, 'abort').length, 0);
  a.abort(new Error('not mine'));
  b.abort(new Error('mine'));
  await assert.rejects(second, /mine/);
  // A read without a signal is not ended by the signal an earlier read waited with.
  const c = new AbortController();
  const third = new ByteReader();
  const withSignal = third.readU8({ signal: c.signal });
  third.push(Buffer.from([7]));
  await withSignal;
  const without = third.readU8();
  c.abort(new Error('stale'));
  third.push(Buffer.from([8]));
  assert.equal(await without, 8);
  third.end();
  assert.equal(getEventListeners(c.signal, 'abort').length, 0);
});

test('only one read may wait at a time', async () => {
  const r = new ByteReader();
  const first = r.readU8();
  await assert.rejects(r.readU8(), /already pending/);
  r.push(Buffer.from([7]));
  assert.equal(await first, 7);
});

test('discard() drops what is buffered, ends the reader and rejects a waiting read', async () => {
  const r = new ByteReader();
  r.push(Buffer.alloc(1000, 1));
  assert.equal(r.bufferedLength, 1000);
  r.discard();
  assert.equal(r.bufferedLength, 0);
  assert.ok(r.ended);
  await assert.rejects(r.readExactly(1), ConnectionClosedError);
  r.push(Buffer.alloc(10));
  assert.equal(r.bufferedLength, 0, 'nothing is taken after discard()');
  const waiting = new ByteReader();
  const p = waiting.readExactly(4);
  waiting.push(Buffer.alloc(2));
  waiting.discard();
  await assert.rejects(p, ConnectionClosedError);
});
