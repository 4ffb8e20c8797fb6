/**
 * The seekable form of a recording: a fresh decoder started at any keyframe and fed the messages
 * after it lands on the very frame a decoder from the start shows, although the original ZRLE
 * stream compressed each rectangle with references to earlier ones (as QEMU and TigerVNC do);
 * messages other than updates, and pseudo-rectangles, pass through as they were; a recording in
 * an encoding we cannot follow is not made seekable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as zlibConstants, createDeflate } from 'node:zlib';
import { RecordType, parseRecords, type ParsedRecord } from '../../../src/recording/recording-file.js';
import { KEYFRAME_RECORD, recordableEncoding, seekableRecords } from '../../../src/recording/seekable.js';
import { ByteReader, Encoding, RGB888_PIXEL_FORMAT, encodeFramebufferUpdateHeader, encodeRectangleHeader, encodeServerInit } from '../../../src/rfb/index.js';
import { FramebufferDecoder } from '../../../src/screenshot/framebuffer-decoder.js';

const W = 256;
const H = 160;

/** A deterministic PRNG (the test's data only). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** One zlib stream for the connection, a sync flush after each rectangle (references to earlier rectangles allowed). */
class StreamingDeflate {
  private readonly z = createDeflate({ level: 6 });
  private out: Buffer[] = [];
  constructor() {
    this.z.on('data', (b: Buffer) => this.out.push(b));
  }
  async take(data: Buffer): Promise<Buffer> {
    this.out = [];
    this.z.write(data);
    await new Promise<void>((resolve) => this.z.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    return Buffer.concat(this.out);
  }
  close(): void {
    this.z.close();
  }
}

interface Made {
  records: ParsedRecord[];
  /** The screen after each FramebufferUpdate, in order. */
  snapshots: Uint32Array[];
}

/** A recording of `updates` updates in ZRLE (one stream), CopyRect, Hextile and Raw, with a bell and clipboard text between. */
async function makeRecording(updates: number, extras: { pseudo?: boolean } = {}): Promise<Made> {
  const rnd = prng(42);
  const fb = new Uint32Array(W * H);
  const z = new StreamingDeflate();
  const messages: Buffer[] = [];
  const snapshots: Uint32Array[] = [];
  const px4 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v, 0);
    return b;
  };
  for (let i = 0; i < updates; i++) {
    const rects: Buffer[] = [];
    let count = 0;
    const kind = i % 4;
    if (kind === 0 || kind === 3) {
      // A band of "text" in ZRLE: raw tiles (sub-encoding 0, CPIXELs), through the one stream.
      const y = Math.floor(rnd() * (H - 32));
      const h = 32;
      for (let yy = y; yy < y + h; yy++) for (let x = 0; x < W; x++) fb[yy * W + x] = ((x >> 2) + i + (yy >> 3)) & 1 ? 0xe0e0e0 : 0x101820 + i;
      const tiles: number[] = [];
      for (let ty = y; ty < y + h; ty += 64) {
        for (let tx = 0; tx < W; tx += 64) {
          tiles.push(0);
          for (let yy = ty; yy < Math.min(ty + 64, y + h); yy++) {
            for (let x = tx; x < Math.min(tx + 64, W); x++) {
              const v = fb[yy * W + x]!;
              tiles.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff);
            }
          }
        }
      }
      const data = await z.take(Buffer.from(tiles));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length, 0);
      rects.push(encodeRectangleHeader({ x: 0, y, width: W, height: h, encoding: Encoding.ZRLE }), len, data);
      count++;
    }
    if (kind === 1) {
      // Scrolling: CopyRect (the source read before anything is written).
      const copy = fb.slice();
      for (let yy = 0; yy < 96; yy++) for (let x = 0; x < 128; x++) fb[(yy + 32) * W + x + 64] = copy[yy * W + x]!;
      const src = Buffer.alloc(4);
      src.writeUInt16BE(0, 0);
      src.writeUInt16BE(0, 2);
      rects.push(encodeRectangleHeader({ x: 64, y: 32, width: 128, height: 96, encoding: Encoding.CopyRect }), src);
      count++;
    }
    if (kind === 2) {
      // Hextile: a solid 32x32 (background in the first tile, kept for the others), then Raw 16x16.
      const colour = 0x204060 + i;
      const x0 = 32 * Math.floor(rnd() * 6);
      const y0 = 32 * Math.floor(rnd() * 4);
      for (let yy = y0; yy < y0 + 32; yy++) fb.fill(colour, yy * W + x0, yy * W + x0 + 32);
      rects.push(encodeRectangleHeader({ x: x0, y: y0, width: 32, height: 32, encoding: Encoding.Hextile }), Buffer.from([2]), px4(colour), Buffer.from([0, 0, 0]));
      const raw: Buffer[] = [];
      for (let yy = 0; yy < 16; yy++) {
        for (let x = 0; x < 16; x++) {
          const v = Math.floor(rnd() * 0xffffff);
          fb[(y0 + yy) * W + x0 + x] = v;
          raw.push(px4(v));
        }
      }
      rects.push(encodeRectangleHeader({ x: x0, y: y0, width: 16, height: 16, encoding: Encoding.Raw }), ...raw);
      count += 2;
      if (extras.pseudo) {
        // A cursor (pixels and mask), the desktop's name, QEMU's LED state: framed, not drawn.
        rects.push(encodeRectangleHeader({ x: 1, y: 1, width: 4, height: 3, encoding: -239 }), Buffer.alloc(4 * 3 * 4 + 1 * 3, 7));
        rects.push(encodeRectangleHeader({ x: 0, y: 0, width: 0, height: 0, encoding: -307 }), Buffer.from([0, 0, 0, 3]), Buffer.from('abc'));
        rects.push(encodeRectangleHeader({ x: 0, y: 0, width: 0, height: 0, encoding: -261 }), Buffer.from([5]));
        count += 3;
      }
    }
    messages.push(Buffer.concat([encodeFramebufferUpdateHeader(count), ...rects]));
    snapshots.push(fb.slice());
    if (i % 7 === 3) {
      messages.push(Buffer.from([2]));
      const text = Buffer.from('clip');
      const head = Buffer.alloc(8);
      head[0] = 3;
      head.writeInt32BE(text.length, 4);
      messages.push(head, text);
    }
  }
  z.close();
  // The server's bytes as the proxy read them: cut anywhere, not at message boundaries.
  const all = Buffer.concat(messages);
  const records: ParsedRecord[] = [{ type: RecordType.ServerInit, t: 0, payload: encodeServerInit({ width: W, height: H, pixelFormat: RGB888_PIXEL_FORMAT, name: 'seek' }) }];
  let t = 0;
  for (let p = 0; p < all.length;) {
    const n = 1 + Math.floor(rnd() * 3000);
    records.push({ type: RecordType.ServerBytes, t, payload: all.subarray(p, p + n) });
    if (rnd() < 0.2) records.push({ type: RecordType.Pointer, t, payload: Buffer.from([5, 1, 0, 10, 0, 10]) });
    p += n;
    t += 700;
  }
  records.push({ type: RecordType.End, t, payload: Buffer.from('{"reason":"x"}') });
  return { records, snapshots };
}

/** What a player gets: the server's messages in order, and where each keyframe starts. */
function playerView(seekable: Buffer): { chunks: Buffer[]; keyframes: Array<{ index: number; bytes: Buffer }>; others: number } {
  const chunks: Buffer[] = [];
  const keyframes: Array<{ index: number; bytes: Buffer }> = [];
  let others = 0;
  for (const r of parseRecords(seekable)) {
    if (r.type === RecordType.ServerBytes) chunks.push(r.payload);
    else if (r.type === KEYFRAME_RECORD) keyframes.push({ index: chunks.length, bytes: r.payload });
    else others++;
  }
  return { chunks, keyframes, others };
}

/** A fresh decoder fed `bytes`: the screen after its `updates` FramebufferUpdates. */
async function screenAfter(bytes: Buffer[], updates: number): Promise<Uint32Array> {
  const reader = new ByteReader({ maxReadLength: 1 << 24 });
  for (const b of bytes) reader.push(b);
  const d = new FramebufferDecoder(reader, W, H);
  try {
    for (let i = 0; i < updates; i++) await d.nextUpdate();
    return d.pixels.slice();
  } finally {
    d.close();
  }
}

const isUpdate = (b: Buffer): boolean => b[0] === 0;

test('from every keyframe, a fresh decoder fed what follows lands on the frame a decoder from the start shows', async () => {
  const { records, snapshots } = await makeRecording(160);
  const s = await seekableRecords(records);
  assert.ok(s, 'made seekable');
  const { chunks, keyframes, others } = playerView(s.records);
  assert.equal(s.keyframes, keyframes.length);
  assert.ok(keyframes.length >= 2, `keyframes: ${keyframes.length}`);
  assert.equal(others, records.filter((r) => r.type !== RecordType.ServerBytes).length, 'the other records pass through');
  assert.equal(chunks.filter(isUpdate).length, snapshots.length, 'one message per update');
  // From the start: every frame.
  assert.deepEqual(await screenAfter(chunks, snapshots.length), snapshots.at(-1));
  for (const k of keyframes) {
    const before = chunks.slice(0, k.index).filter(isUpdate).length;
    assert.deepEqual(await screenAfter([k.bytes], 1), snapshots[before - 1], `keyframe after update ${before}`);
    // Seeking: the keyframe, then the messages up to some later update.
    for (const extra of [1, 5, 23]) {
      let seen = 0;
      let j = k.index;
      while (j < chunks.length && seen < extra) if (isUpdate(chunks[j++]!)) seen++;
      assert.deepEqual(await screenAfter([k.bytes, ...chunks.slice(k.index, j)], 1 + seen), snapshots[before + seen - 1], `keyframe after update ${before}, ${seen} more`);
    }
  }
});

test('pseudo-rectangles (cursor, desktop name, LED state), bells and clipboard text pass through framed as they were', async () => {
  const { records, snapshots } = await makeRecording(30, { pseudo: true });
  const s = (await seekableRecords(records))!;
  assert.ok(s);
  const { chunks } = playerView(s.records);
  const original = Buffer.concat(records.filter((r) => r.type === RecordType.ServerBytes).map((r) => r.payload));
  const cursor = original.indexOf(Buffer.concat([encodeRectangleHeader({ x: 1, y: 1, width: 4, height: 3, encoding: -239 })]));
  assert.ok(cursor > 0 && Buffer.concat(chunks).includes(original.subarray(cursor, cursor + 12 + 51)), 'the cursor rectangle as it was');
  assert.equal(chunks.filter((b) => b.length === 1 && b[0] === 2).length, [3, 10, 17, 24].length, 'bells');
  assert.equal(chunks.filter(isUpdate).length, snapshots.length);
});

test('a recording in an encoding we cannot follow (Tight) is not made seekable; the proxy does not offer Tight to recorded sessions\' servers', async () => {
  const init = encodeServerInit({ width: W, height: H, pixelFormat: RGB888_PIXEL_FORMAT, name: 'x' });
  const tight = Buffer.concat([encodeFramebufferUpdateHeader(1), encodeRectangleHeader({ x: 0, y: 0, width: 8, height: 8, encoding: Encoding.Tight }), Buffer.from([0x80, 1, 2, 3])]);
  assert.equal(await seekableRecords([{ type: RecordType.ServerInit, t: 0, payload: init }, { type: RecordType.ServerBytes, t: 1, payload: tight }]), null);
  for (const e of [Encoding.Tight, Encoding.TightPNG, Encoding.Zlib, Encoding.RRE, Encoding.JPEG, 50]) assert.equal(recordableEncoding(e), false, String(e));
  for (const e of [Encoding.ZRLE, Encoding.Hextile, Encoding.CopyRect, Encoding.Raw, Encoding.DesktopSize, -239, 0xc0a1e5ce | 0]) assert.equal(recordableEncoding(e), true, String(e));
});
