/** The screenshot decoder: Raw, CopyRect, Hextile and ZRLE against pixels we know, and hostile input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ByteReader, Encoding, PixelConverter, ZrleEncoder, encodeCopyRect, encodeFramebufferUpdateHeader, encodeRectangleHeader, encodeServerCutText, encodeBell,
} from '../../../src/rfb/index.js';
import { FramebufferDecoder, SCREENSHOT_PIXEL_FORMAT } from '../../../src/screenshot/framebuffer-decoder.js';

const conv = new PixelConverter(SCREENSHOT_PIXEL_FORMAT);

function pixel(rgb: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(conv.pack(rgb));
  return b;
}

function raw(w: number, h: number, f: (x: number, y: number) => number): Buffer {
  const out = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.writeUInt32LE(conv.pack(f(x, y)), (y * w + x) * 4);
  return out;
}

function rect(x: number, y: number, width: number, height: number, encoding: number, body: Buffer): Buffer {
  return Buffer.concat([encodeRectangleHeader({ x, y, width, height, encoding }), body]);
}

async function decode(width: number, height: number, ...messages: Buffer[]): Promise<{ d: FramebufferDecoder; complete: boolean }> {
  const reader = new ByteReader({ maxReadLength: 1024 * 1024 });
  // One byte at a time: every read must wait for its bytes correctly.
  const all = Buffer.concat(messages);
  for (let i = 0; i < all.length; i += 7) reader.push(all.subarray(i, i + 7));
  const d = new FramebufferDecoder(reader, width, height);
  const { complete } = await d.nextUpdate();
  return { d, complete };
}

const pattern = (x: number, y: number): number => ((x * 37) & 0xff) << 16 | ((y * 11) & 0xff) << 8 | ((x ^ y) & 0xff);

test('Raw fills the framebuffer; other server messages before the update are skipped', async () => {
  const { d, complete } = await decode(40, 30, encodeBell(), encodeServerCutText(Buffer.from('clip')),
    encodeFramebufferUpdateHeader(1), rect(0, 0, 40, 30, Encoding.Raw, raw(40, 30, pattern)));
  assert.equal(complete, true);
  for (let y = 0; y < 30; y++) for (let x = 0; x < 40; x++) assert.equal(d.pixels[y * 40 + x], pattern(x, y));
});

test('CopyRect copies from what is painted; a partial update is reported incomplete', async () => {
  const { d, complete } = await decode(20, 10, encodeFramebufferUpdateHeader(2),
    rect(0, 0, 10, 10, Encoding.Raw, raw(10, 10, pattern)), rect(10, 0, 10, 10, Encoding.CopyRect, encodeCopyRect(0, 0)));
  assert.equal(complete, true);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) assert.equal(d.pixels[y * 20 + x + 10], pattern(x, y));
  const partial = await decode(20, 10, encodeFramebufferUpdateHeader(1), rect(0, 0, 10, 10, Encoding.Raw, raw(10, 10, pattern)));
  assert.equal(partial.complete, false);
});

test('Hextile: raw tiles, background, foreground subrects and coloured subrects, colours carried between tiles', async () => {
  const RED = 0xff0000;
  const GREEN = 0x00ff00;
  const BLUE = 0x0000ff;
  // 32x20: tiles (0,0) 16x16, (16,0) 16x16, (0,16) 16x4, (16,16) 16x4.
  const tiles = Buffer.concat([
    // tile 1: background red, foreground green, one subrect 4x2 at (1,2)
    Buffer.from([2 | 4 | 8]), pixel(RED), pixel(GREEN), Buffer.from([1, (1 << 4) | 2, (3 << 4) | 1]),
    // tile 2: raw
    Buffer.from([1]), raw(16, 16, (x, y) => pattern(x + 16, y)),
    // tile 3: no flags: background (red) carried over, no subrects
    Buffer.from([0]),
    // tile 4: coloured subrect, blue 2x2 at (15,3) would overflow: use (14,2) 2x2
    Buffer.from([8 | 16, 1]), pixel(BLUE), Buffer.from([(14 << 4) | 2, (1 << 4) | 1]),
  ]);
  const { d } = await decode(32, 20, encodeFramebufferUpdateHeader(1), rect(0, 0, 32, 20, Encoding.Hextile, tiles));
  const at = (x: number, y: number): number => d.pixels[y * 32 + x]!;
  assert.equal(at(0, 0), RED);
  assert.equal(at(1, 2), GREEN);
  assert.equal(at(4, 3), GREEN);
  assert.equal(at(5, 3), RED);
  assert.equal(at(20, 5), pattern(20, 5));
  assert.equal(at(3, 18), RED);
  assert.equal(at(30, 18), BLUE);
  assert.equal(at(31, 19), BLUE);
  assert.equal(at(29, 18), RED);
});

test('ZRLE from our encoder (one zlib stream over several rectangles) decodes to the source pixels', async () => {
  const w = 150;
  const h = 90;
  const src = new Uint32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    // Solid, few-colour, many-colour and run regions, so several sub-encodings are used.
    src[y * w + x] = x < 64 ? 0x123456 : x < 100 ? ((x >> 2) & 1 ? 0xffffff : 0x000000) : x < 130 ? pattern(x, y) : (y < 40 ? 0xaa0000 : 0x00aa00);
  }
  const enc = new ZrleEncoder();
  const first = enc.encode(src, w, 0, 0, w, 50, conv);
  const second = enc.encode(src, w, 0, 50, w, 40, conv);
  const { d, complete } = await decode(w, h, encodeFramebufferUpdateHeader(2), rect(0, 0, w, 50, Encoding.ZRLE, first), rect(0, 50, w, 40, Encoding.ZRLE, second));
  assert.equal(complete, true);
  assert.deepEqual(Array.from(d.pixels), Array.from(src));
});

test('DesktopSize resizes; LastRect ends the update', async () => {
  const { d, complete } = await decode(10, 10, encodeFramebufferUpdateHeader(3),
    rect(0, 0, 4, 3, Encoding.DesktopSize, Buffer.alloc(0)), rect(0, 0, 4, 3, Encoding.Raw, raw(4, 3, pattern)), rect(0, 0, 0, 0, Encoding.LastRect, Buffer.alloc(0)));
  assert.equal(d.width, 4);
  assert.equal(d.height, 3);
  assert.equal(complete, true);
});

test('hostile updates are protocol errors, not crashes or huge allocations', async () => {
  const cases: Array<[string, Buffer[]]> = [
    ['outside', [encodeFramebufferUpdateHeader(1), rect(5, 5, 10, 10, Encoding.Raw, Buffer.alloc(400))]],
    ['unasked encoding', [encodeFramebufferUpdateHeader(1), rect(0, 0, 2, 2, Encoding.Tight, Buffer.alloc(16))]],
    ['copyrect source', [encodeFramebufferUpdateHeader(1), rect(0, 0, 8, 8, Encoding.CopyRect, encodeCopyRect(5, 5))]],
    ['hextile subrect', [encodeFramebufferUpdateHeader(1), rect(0, 0, 8, 8, Encoding.Hextile, Buffer.from([8, 1, 0x77, 0x77]))]],
    ['zrle length', [encodeFramebufferUpdateHeader(1), rect(0, 0, 8, 8, Encoding.ZRLE, Buffer.from([0x7f, 0xff, 0xff, 0xff]))]],
    ['zrle garbage', [encodeFramebufferUpdateHeader(1), rect(0, 0, 8, 8, Encoding.ZRLE, Buffer.from([0, 0, 0, 4, 1, 2, 3, 4]))]],
    ['huge desktop', [encodeFramebufferUpdateHeader(1), rect(0, 0, 60000, 60000, Encoding.DesktopSize, Buffer.alloc(0))]],
    ['unknown message', [Buffer.from([77])]],
  ];
  for (const [name, msgs] of cases) {
    const reader = new ByteReader();
    reader.push(Buffer.concat(msgs));
    reader.end();
    const d = new FramebufferDecoder(reader, 10, 10);
    await assert.rejects(d.nextUpdate(), (e: Error & { code?: string }) => e.code === 'PROTOCOL', name);
    d.close();
  }
});
