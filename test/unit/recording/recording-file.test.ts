/** The recording file: sealed chunks, the digest chain, a crash mid-write, and tampering. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RecordType, RecordingWriter, parseRecords, readRecording, type WriterProgress } from '../../../src/recording/recording-file.js';
import { tempDir } from '../../helpers/stack.js';

async function written(records: number, flushEvery: number): Promise<{ path: string; id: string; key: Buffer; progress: WriterProgress[] }> {
  const id = randomUUID();
  const key = randomBytes(32);
  const path = join(tempDir(), `${id}.ecsrec`);
  const progress: WriterProgress[] = [];
  const w = new RecordingWriter(id, key, path, (p) => progress.push(p), (e) => assert.fail(e));
  for (let i = 0; i < records; i++) {
    w.append(RecordType.ServerBytes, i * 10, Buffer.from(`update ${i} `.repeat(20)));
    if ((i + 1) % flushEvery === 0) w.flush();
  }
  await w.close();
  return { path, id, key, progress };
}

test('records round-trip through sealed chunks; the store\'s chain verifies them; nothing is in clear on disk', async () => {
  const { path, id, key, progress } = await written(50, 10);
  const last = progress[progress.length - 1]!;
  assert.equal(last.chunks, 5);
  assert.equal(last.durationMs, 490);
  const r = await readRecording(path, id, key, last);
  assert.equal(r.integrity, 'verified');
  const recs = parseRecords(r.records);
  assert.equal(recs.length, 50);
  assert.equal(recs[7]!.t, 70);
  assert.equal(recs[7]!.payload.toString().slice(0, 9), 'update 7 ');
  assert.ok(!readFileSync(path).includes('update'), 'plaintext on disk');
  // Another key (another master key's data key) opens nothing.
  const wrong = await readRecording(path, id, randomBytes(32), last);
  assert.equal(wrong.integrity, 'tampered');
  assert.equal(wrong.records.length, 0);
});

test('a process killed mid-write: the file plays up to the last whole chunk; chunks the store has not heard of are a verified tail', async () => {
  const { path, id, key, progress } = await written(30, 10);
  // The store heard of 2 of the 3 chunks when the process died, and half of a 4th chunk was on disk.
  appendFileSync(path, Buffer.from([0, 0, 1, 0, 9, 9, 9]));
  const r = await readRecording(path, id, key, progress[1]!);
  assert.equal(r.integrity, 'verified-with-tail');
  assert.equal(parseRecords(r.records).length, 30);
  // What the store last recorded, exactly.
  const exact = await readRecording(path, id, key, progress[2]!);
  assert.equal(exact.integrity, 'verified');
});

test('tampering shows: a changed byte, a file cut at a chunk boundary, chunks of another recording', async () => {
  const { path, id, key, progress } = await written(30, 10);
  const last = progress[progress.length - 1]!;
  const original = readFileSync(path);
  const flipped = Buffer.from(original);
  flipped[flipped.length - 5]! ^= 1;
  writeFileSync(path, flipped);
  assert.equal((await readRecording(path, id, key, last)).integrity, 'tampered');
  writeFileSync(path, original);
  // Cut after the second chunk: still sealed chunks, but fewer than the store knows.
  truncateSync(path, original.length - (last.bytes - progress[1]!.bytes));
  const cut = await readRecording(path, id, key, last);
  assert.equal(cut.integrity, 'tampered');
  assert.equal(parseRecords(cut.records).length, 20);
  // The same chunks under another recording's id do not open (their AAD names the recording and index).
  writeFileSync(path, original);
  await assert.rejects(readRecording(path, randomUUID(), key, last), /not the recording file/);
});

test('a file re-sealed with the recording\'s own key (a forger who got the key) does not match the store\'s digest chain', async () => {
  const { path, id, key, progress } = await written(30, 10);
  const last = progress[progress.length - 1]!;
  // Other records, the same id, key and number of chunks: every chunk opens.
  const forged: WriterProgress[] = [];
  const other = join(tempDir(), 'forged.ecsrec');
  const w = new RecordingWriter(id, key, other, (p) => forged.push(p), (e) => assert.fail(e));
  for (let i = 0; i < 30; i++) {
    w.append(RecordType.ServerBytes, i * 10, Buffer.from(`forged ${i} `.repeat(20)));
    if ((i + 1) % 10 === 0) w.flush();
  }
  await w.close();
  assert.equal(forged.at(-1)!.chunks, last.chunks);
  writeFileSync(path, readFileSync(other));
  const r = await readRecording(path, id, key, last);
  assert.equal(r.integrity, 'tampered');
});
