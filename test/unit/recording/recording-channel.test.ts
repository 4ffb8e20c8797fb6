/**
 * The recording worker and its channel: records of several recordings staged together land in
 * their own files, sealed and chained as the store is told; past its bound the queue says so (the
 * relay pauses) and calls back once drained, and nothing is dropped; a recording with no records
 * leaves no file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../../src/log.js';
import { RecordingChannel } from '../../../src/recording/recording-channel.js';
import { RecordType, parseRecords, readRecording, type WriterProgress } from '../../../src/recording/recording-file.js';
import { tempDir } from '../../helpers/stack.js';

function channel(maxQueueBytes?: number) {
  const progress = new Map<number, WriterProgress[]>();
  const failures: string[] = [];
  const ch = new RecordingChannel({
    progress: (slot, p) => progress.set(slot, [...(progress.get(slot) ?? []), p]),
    failed: (_slot, message) => failures.push(message),
  }, silentLogger(), maxQueueBytes);
  return { ch, progress, failures };
}

test('two recordings through one worker: each file holds its own records, sealed, and verifies against the progress reported', async () => {
  const { ch, progress, failures } = channel();
  const dir = tempDir();
  const recs = [0, 1].map(() => ({ id: randomUUID(), key: randomBytes(32) }));
  const slots = recs.map((r) => ch.open(r.id, r.key, join(dir, `${r.id}.ecsrec`)));
  try {
    for (let i = 0; i < 40; i++) {
      ch.append(slots[i % 2]!, RecordType.ServerBytes, i * 10, Buffer.from(`update ${i} of ${i % 2} `.repeat(50)));
      if (i % 10 === 9) ch.flush();
    }
    const last = await Promise.all(slots.map((s) => ch.close(s)));
    for (const [k, r] of recs.entries()) {
      const p = last[k]!;
      assert.ok(p.chunks >= 4, `one chunk per batch (${p.chunks})`);
      assert.deepEqual(progress.get(slots[k]!)!.at(-1), p);
      const read = await readRecording(join(dir, `${r.id}.ecsrec`), r.id, r.key, p);
      assert.equal(read.integrity, 'verified');
      const records = parseRecords(read.records);
      assert.equal(records.length, 20);
      assert.ok(records.every((x, j) => x.t === (j * 2 + k) * 10 && x.payload.toString().startsWith(`update ${j * 2 + k} of ${k} `)));
    }
    assert.deepEqual(failures, []);
  } finally {
    await ch.stop();
  }
});

test('past its bound the queue says so and calls back once drained; nothing is dropped', async () => {
  const { ch } = channel(256 * 1024);
  const dir = tempDir();
  const id = randomUUID();
  const key = randomBytes(32);
  const slot = ch.open(id, key, join(dir, `${id}.ecsrec`));
  try {
    let behind = 0;
    const payload = (i: number): Buffer => Buffer.alloc(48 * 1024, i & 0xff);
    for (let i = 0; i < 200; i++) {
      // A relay: it stops reading when told, and reads on once called back.
      if (!ch.append(slot, RecordType.ServerBytes, i, payload(i))) {
        behind++;
        assert.equal(ch.behind, true);
        await new Promise<void>((resolve) => ch.whenCaughtUp(resolve));
        assert.equal(ch.behind, false);
      }
    }
    assert.ok(behind > 0, 'the queue never filled');
    const p = (await ch.close(slot))!;
    const read = await readRecording(join(dir, `${id}.ecsrec`), id, key, p);
    assert.equal(read.integrity, 'verified');
    const records = parseRecords(read.records);
    assert.equal(records.length, 200);
    assert.ok(records.every((r, i) => r.t === i && r.payload.equals(payload(i))));
  } finally {
    await ch.stop();
  }
});

test('a recording that got no records leaves no file; closing reports nothing written', async () => {
  const { ch } = channel();
  const dir = tempDir();
  const id = randomUUID();
  const slot = ch.open(id, randomBytes(32), join(dir, `${id}.ecsrec`));
  try {
    assert.equal(await ch.close(slot), null);
    assert.equal(existsSync(join(dir, `${id}.ecsrec`)), false);
  } finally {
    await ch.stop();
  }
});

test('a record larger than a staging buffer goes over on its own, between the others, in order', async () => {
  const { ch } = channel();
  const dir = tempDir();
  const id = randomUUID();
  const key = randomBytes(32);
  const slot = ch.open(id, key, join(dir, `${id}.ecsrec`));
  try {
    const big = Buffer.alloc(5 * 1024 * 1024, 9);
    ch.append(slot, RecordType.ServerBytes, 1, Buffer.from('before'));
    ch.append(slot, RecordType.ServerBytes, 2, big);
    ch.append(slot, RecordType.ServerBytes, 3, Buffer.from('after'));
    const p = (await ch.close(slot))!;
    const read = await readRecording(join(dir, `${id}.ecsrec`), id, key, p);
    assert.equal(read.integrity, 'verified');
    const records = parseRecords(read.records);
    assert.deepEqual(records.map((r) => r.t), [1, 2, 3]);
    assert.ok(records[1]!.payload.equals(big));
    assert.equal(records[2]!.payload.toString(), 'after');
  } finally {
    await ch.stop();
  }
});

test('payloads at every offset and of every length mod 8, of three recordings interleaved, come back byte for byte (the stage pads to keep copies aligned)', async () => {
  const { ch, failures } = channel();
  const dir = tempDir();
  const recs = [0, 1, 2].map(() => ({ id: randomUUID(), key: randomBytes(32) }));
  const slots = recs.map((r) => ch.open(r.id, r.key, join(dir, `${r.id}.ecsrec`)));
  // Views into one buffer at offsets 0..15 and lengths 0..17 (a socket read, a slice of one, a
  // framer's message), and payloads that fill a stage to its last bytes.
  const source = randomBytes(64 * 1024);
  const sent: Buffer[][] = [[], [], []];
  try {
    let i = 0;
    for (let round = 0; round < 3; round++) {
      for (let off = 0; off < 16; off++) {
        for (let len = 0; len < 18; len++) {
          const k = i++ % 3;
          const p = source.subarray(off, off + len * 997 % 4096);
          ch.append(slots[k]!, RecordType.ServerBytes, i, p);
          sent[k]!.push(Buffer.from(p));
        }
      }
      ch.flush();
    }
    for (let n = 0; n < 70; n++) {
      const p = source.subarray(n % 8, n % 8 + 60_001 + n);
      ch.append(slots[0]!, RecordType.ServerBytes, i++, p);
      sent[0]!.push(Buffer.from(p));
    }
    const last = await Promise.all(slots.map((s) => ch.close(s)));
    for (const [k, r] of recs.entries()) {
      const read = await readRecording(join(dir, `${r.id}.ecsrec`), r.id, r.key, last[k]!);
      assert.equal(read.integrity, 'verified');
      const got = parseRecords(read.records).map((x) => x.payload);
      assert.equal(got.length, sent[k]!.length);
      assert.ok(got.every((x, j) => x.equals(sent[k]![j]!)), `recording ${k}: a payload differs`);
    }
    assert.deepEqual(failures, []);
  } finally {
    await ch.stop();
  }
});
