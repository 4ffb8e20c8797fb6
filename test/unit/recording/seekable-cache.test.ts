/**
 * The seekable form's cache (src/recording/seekable-cache.ts), over a real SQLite store and
 * recording files: a finished recording's form is built once and kept sealed beside it, and a hit
 * is the very bytes a fresh build gives; concurrent requests build once; a cache file that was
 * altered, cut short, swapped from another recording or not ours is rebuilt, never served; a
 * recording still being written is built and not kept, one that cannot be made seekable is kept as
 * such; purge (retention and quota) deletes the cache with its recording; master-key rotation
 * leaves it readable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/config.js';
import { silentLogger } from '../../../src/log.js';
import { RecordType, RecordingWriter, parseRecords, type WriterProgress } from '../../../src/recording/recording-file.js';
import type { RecordingService } from '../../../src/recording/recording-service.js';
import { seekableRecords } from '../../../src/recording/seekable.js';
import { seekableCacheFile } from '../../../src/recording/seekable-cache.js';
import type { RecordingPolicy, RecordingRecord } from '../../../src/recording/types.js';
import { rotateMasterKey } from '../../../src/secrets/key-rotation.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import {
  Encoding, PixelConverter, RGB888_PIXEL_FORMAT, ZrleEncoder, encodeFramebufferUpdateHeader, encodeRectangleHeader, encodeServerInit,
} from '../../../src/rfb/index.js';
import { tempDir } from '../../helpers/stack.js';

const W = 64;
const H = 48;
const b64 = (k: Buffer): string => k.toString('base64');

type Services = Awaited<ReturnType<typeof createServices>>;

async function open(dataDir: string, ring: Buffer[], mode?: 'create'): Promise<Services> {
  return createServices(loadConfig({ flags: { dataDir }, env: { ECS_CONSOLE_MASTER_KEY: ring.map(b64).join(',') } }), { logger: silentLogger() }, mode);
}

/** A fresh store and recording service for one test, closed after it whatever happens. */
async function withRecordings(fn: (rs: RecordingService) => Promise<void>): Promise<void> {
  const s = await open(tempDir(), [randomBytes(32)], 'create');
  try {
    await fn(s.recordings);
  } finally {
    await s.close();
  }
}

const POLICY: RecordingPolicy = {
  scope: 'project', scopeId: 'p', projectId: 'p', enabled: true, keystrokes: false, retentionDays: 30, quotaBytes: null, updatedAt: 0, updatedBy: null,
};

/**
 * A recording of `updates` ZRLE updates (one zlib stream, one a second, every third a full
 * screen), written and indexed as the proxy would: finished unless `ended` is false.
 */
async function record(rs: RecordingService, updates: number, opts: { ended?: boolean; seed?: number; expired?: boolean } = {}): Promise<RecordingRecord> {
  const { record: rec, key } = rs.newRecording({ id: `session-${randomBytes(4).toString('hex')}`, projectId: 'p', serverId: 's' }, POLICY);
  mkdirSync(rs.config.dir, { recursive: true, mode: 0o700 });
  const progress: WriterProgress[] = [];
  const w = new RecordingWriter(rec.id, key, join(rs.config.dir, rec.file), (p) => progress.push(p), (e) => assert.fail(e));
  w.append(RecordType.ServerInit, 0, encodeServerInit({ width: W, height: H, pixelFormat: RGB888_PIXEL_FORMAT, name: 'cache' }));
  const fb = new Uint32Array(W * H);
  const conv = new PixelConverter({ ...RGB888_PIXEL_FORMAT, redShift: 0, blueShift: 16 });
  const zrle = new ZrleEncoder();
  const seed = opts.seed ?? 1;
  for (let i = 0; i < updates; i++) {
    const full = i % 3 === 0;
    const [y, h] = full ? [0, H] : [(i * 8) % (H - 8), 8];
    for (let yy = y; yy < y + h; yy++) for (let x = 0; x < W; x++) fb[yy * W + x] = ((x >> 2) + i + seed + (full ? yy : 0)) & 1 ? 0xe0e0e0 : 0x101820 + seed;
    const body = zrle.encode(fb, W, 0, y, W, h, conv);
    w.append(RecordType.ServerBytes, i * 1000, Buffer.concat([encodeFramebufferUpdateHeader(1), encodeRectangleHeader({ x: 0, y, width: W, height: h, encoding: Encoding.ZRLE }), body]));
    if (i % 5 === 4) w.flush();
  }
  await w.close();
  const p = progress.at(-1)!;
  const now = Date.now();
  const row: RecordingRecord = { ...rec, ...p, endedAt: opts.ended === false ? null : now, ...(opts.expired ? { expiresAt: now - 1 } : {}) };
  await rs.store.insertRecording(row);
  return row;
}

/** The seekable form through the service (the route's path): what was served and whether from the cache. */
async function load(rs: RecordingService, rec: RecordingRecord) {
  return rs.seekableForm(rec, await rs.read(rec));
}

/** A fresh build, without the cache. */
async function fresh(rs: RecordingService, rec: RecordingRecord): Promise<Buffer> {
  const s = await seekableRecords(parseRecords((await rs.read(rec)).records));
  assert.ok(s, 'the recording is seekable');
  assert.ok(s.keyframes > 0, 'with keyframes');
  return s.records;
}

test('a finished recording: built once and kept (sealed, 0600, nothing in clear), a hit is the bytes a fresh build gives; concurrent requests build once', () => withRecordings(async (rs) => {
  const rec = await record(rs, 30);
  const expected = await fresh(rs, rec);
  // Five at once: one build, the same bytes for each.
  const all = await Promise.all(Array.from({ length: 5 }, () => load(rs, rec)));
  assert.equal(rs.seekable.builds, 1, 'concurrent requests built once');
  for (const r of all) assert.ok(r.form?.records.equals(expected));
  assert.deepEqual([...new Set(all.map((r) => r.cache))], ['built']);
  const path = join(rs.config.dir, seekableCacheFile(rec));
  assert.equal(statSync(path).mode & 0o777, 0o600);
  // Sealed: none of the form's bytes (a keyframe's ZRLE, the records) in clear.
  const file = readFileSync(path);
  assert.equal(file.indexOf(expected.subarray(200, 232)), -1, 'the form is not in clear');
  const hit = await load(rs, rec);
  assert.equal(hit.cache, 'hit');
  assert.ok(hit.form?.records.equals(expected), 'a hit serves what a fresh build gives');
  assert.equal(hit.form?.keyframes, all[0]!.form?.keyframes);
  assert.equal(rs.seekable.builds, 1, 'the hit did not build');
}));

test('a cache file altered, cut short, with its header changed, swapped from another recording or not ours is rebuilt, never served', () => withRecordings(async (rs) => {
  const rec = await record(rs, 20, { seed: 1 });
  const other = await record(rs, 20, { seed: 2 });
  const expected = await fresh(rs, rec);
  const path = join(rs.config.dir, seekableCacheFile(rec));
  assert.equal((await load(rs, rec)).cache, 'built');
  assert.equal((await load(rs, other)).cache, 'built');
  const good = readFileSync(path);
  const headerEnd = good.indexOf('}') + 1;
  const alterations: Array<[string, (b: Buffer) => Buffer]> = [
    ['a byte of the ciphertext flipped', (b) => {
      const c = Buffer.from(b);
      c[c.length - 100]! ^= 1;
      return c;
    }],
    ['cut short', (b) => b.subarray(0, b.length - 1000)],
    ['keyframe count in the header changed', (b) => Buffer.from(b.toString('latin1').replace(/"keyframes":(\d+)/, (_m, n: string) => `"keyframes":${Number(n) + 1}`), 'latin1')],
    ['the GCM tag changed', (b) => {
      const c = Buffer.from(b);
      c[headerEnd + 12]! ^= 0x80;
      return c;
    }],
    ['another recording\'s cache', () => readFileSync(join(rs.config.dir, seekableCacheFile(other)))],
    ['not ours', () => Buffer.from('garbage')],
    ['empty', () => Buffer.alloc(0)],
  ];
  for (const [what, alter] of alterations) {
    writeFileSync(path, alter(good));
    const r = await load(rs, rec);
    assert.equal(r.cache, 'built', `${what}: rebuilt`);
    assert.ok(r.form?.records.equals(expected), `${what}: the served form is a fresh build's`);
    assert.equal((await load(rs, rec)).cache, 'hit', `${what}: the rebuilt cache is used`);
  }
  // Another recording's file renamed into place over a good one keeps being refused (its key and header are another's).
  copyFileSync(join(rs.config.dir, seekableCacheFile(other)), path);
  assert.equal((await load(rs, rec)).cache, 'built');
}));

test('a recording in an encoding the player\'s form cannot follow (Tight) is kept as not seekable: the original plays, and it is not decoded again', () => withRecordings(async (rs) => {
  const { record: rec, key } = rs.newRecording({ id: 'tight-session', projectId: 'p', serverId: 's' }, POLICY);
  mkdirSync(rs.config.dir, { recursive: true, mode: 0o700 });
  let last: WriterProgress | null = null;
  const w = new RecordingWriter(rec.id, key, join(rs.config.dir, rec.file), (p) => (last = p), (e) => assert.fail(e));
  w.append(RecordType.ServerInit, 0, encodeServerInit({ width: W, height: H, pixelFormat: RGB888_PIXEL_FORMAT, name: 'tight' }));
  w.append(RecordType.ServerBytes, 10, Buffer.concat([encodeFramebufferUpdateHeader(1), encodeRectangleHeader({ x: 0, y: 0, width: 8, height: 8, encoding: 7 }), Buffer.alloc(16)]));
  await w.close();
  const row: RecordingRecord = { ...rec, ...(last as unknown as WriterProgress), endedAt: Date.now() };
  await rs.store.insertRecording(row);
  const first = await load(rs, row);
  assert.deepEqual([first.cache, first.form], ['built', null]);
  const again = await load(rs, row);
  assert.deepEqual([again.cache, again.form], ['hit', null]);
  assert.equal(rs.seekable.builds, 1);
}));

test('a recording still being written (or whose node died) is built from what was read and not kept; a tampered one is not kept either', () => withRecordings(async (rs) => {
  const live = await record(rs, 20, { ended: false });
  const r = await load(rs, live);
  assert.equal(r.cache, 'uncached');
  assert.ok(r.form?.records.equals(await fresh(rs, live)));
  assert.equal(existsSync(join(rs.config.dir, seekableCacheFile(live))), false, 'no cache file');
  // Tampered: a chunk of the recording changed after it finished.
  const done = await record(rs, 20);
  const file = join(rs.config.dir, done.file);
  const bytes = readFileSync(file);
  bytes[bytes.length - 10]! ^= 1;
  writeFileSync(file, bytes);
  const t = await load(rs, done);
  assert.equal(t.cache, 'uncached');
  assert.equal(existsSync(join(rs.config.dir, seekableCacheFile(done))), false);
}));

test('purge deletes the cache with its recording (retention, then quota); the hourly sweep deletes leftovers of builds and orphaned caches', () => withRecordings(async (rs) => {
  const expired = await record(rs, 10, { expired: true });
  const kept = await record(rs, 10);
  for (const r of [expired, kept]) assert.equal((await load(rs, r)).cache, 'built');
  const cacheOf = (r: RecordingRecord): string => join(rs.config.dir, seekableCacheFile(r));
  assert.equal(await rs.purge(), 1);
  assert.equal(existsSync(join(rs.config.dir, expired.file)), false);
  assert.equal(existsSync(cacheOf(expired)), false, 'the expired recording\'s cache went with it');
  assert.equal(existsSync(cacheOf(kept)), true);
  // Over the quota: the oldest finished recordings go, each with its cache.
  await rs.store.putRecordingPolicy({ ...POLICY, quotaBytes: 1 });
  assert.equal(await rs.purge(), 1);
  assert.equal(existsSync(cacheOf(kept)), false, 'the cache went with its recording over the quota');
  // Leftovers: a build's temporary file and a cache without its recording, both older than an hour.
  const tmp = join(rs.config.dir, `${kept.file}.seekable.0123456789ab.tmp`);
  const orphan = join(rs.config.dir, 'gone.ecsrec.seekable');
  const recent = join(rs.config.dir, 'recent.ecsrec.seekable');
  for (const f of [tmp, orphan, recent]) writeFileSync(f, 'x');
  // The purge above swept (nothing) at most an hour ago: the next sweep is two hours on.
  const later = Date.now() + 2 * 3_600_000;
  const old = new Date(later - 2 * 3_600_000);
  for (const f of [tmp, orphan]) utimesSync(f, old, old);
  utimesSync(recent, new Date(later - 60_000), new Date(later - 60_000));
  assert.equal(await rs.seekable.sweep(later), 2);
  assert.deepEqual([tmp, orphan, recent].map(existsSync), [false, false, true], 'a recent file may be a build in progress');
}));

test('master-key rotation: the cache built before it opens after it, with the old key dropped (it is sealed under the recording\'s data key, which rotation does not change)', async () => {
  const dataDir = tempDir();
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = await open(dataDir, [oldKey], 'create');
  let rec: RecordingRecord;
  let expected: Buffer;
  try {
    rec = await record(before.recordings, 20);
    expected = await fresh(before.recordings, rec);
    assert.equal((await load(before.recordings, rec)).cache, 'built');
    const r = await rotateMasterKey(before.stores.keyChecks, new SecretBox([newKey, oldKey]), 1000, { batch: 10 });
    assert.ok(r.resealed >= 1, 'the recording\'s data key re-sealed');
  } finally {
    await before.close();
  }
  const after = await open(dataDir, [newKey]);
  try {
    const row = (await after.recordings.get(rec.id))!;
    assert.notEqual(row.sealedKey, rec.sealedKey, 're-sealed');
    const hit = await load(after.recordings, row);
    assert.equal(hit.cache, 'hit', 'the cache opens after the rotation');
    assert.ok(hit.form?.records.equals(expected));
  } finally {
    await after.close();
  }
});
