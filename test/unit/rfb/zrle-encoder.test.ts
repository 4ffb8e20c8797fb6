import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync, constants as zc } from 'node:zlib';
import { PixelConverter, RGB888_PIXEL_FORMAT, type PixelFormat } from '../../../src/rfb/pixel-format.js';
import { ZrleEncoder, cpixelLayout } from '../../../src/rfb/zrle-encoder.js';
import { ZrleDecoder } from '../../helpers/rfb-zrle-decoder.js';

const formats: Record<string, PixelFormat> = {
  'rgb888 le': RGB888_PIXEL_FORMAT,
  'rgb888 be': { ...RGB888_PIXEL_FORMAT, bigEndian: true },
  novnc: { ...RGB888_PIXEL_FORMAT, redShift: 0, blueShift: 16 },
  'high bytes le': { ...RGB888_PIXEL_FORMAT, redShift: 24, greenShift: 16, blueShift: 8 },
  'high bytes be': { ...RGB888_PIXEL_FORMAT, bigEndian: true, redShift: 24, greenShift: 16, blueShift: 8 },
  'depth 32': { ...RGB888_PIXEL_FORMAT, depth: 32 },
  'rgb565 le': { bitsPerPixel: 16, depth: 16, bigEndian: false, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
  'rgb565 be': { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
  bgr233: { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 },
};

const W = 200;
const H = 150;

/** Screens that push the encoder into each sub-encoding. */
function screens(): Record<string, Uint32Array> {
  let seed = 42;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  const make = (f: (x: number, y: number) => number): Uint32Array => {
    const fb = new Uint32Array(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) fb[y * W + x] = f(x, y);
    return fb;
  };
  return {
    solid: make(() => 0x102030),
    text: make((x, y) => ((x * 7 + y * 3) % 11 < 3 && y % 16 < 12 ? 0xc0c0c0 : 0x000000)),
    'five colours': make((x) => [0, 0xff0000, 0x00ff00, 0x0000ff, 0xffffff][(x >> 3) % 5] ?? 0),
    stripes: make((x) => (x >> 4) * 0x0a0a0a),
    'many colours in runs': make((x, y) => ((x >> 2) + y * 50) * 0x010203),
    noise: make(() => rnd() & 0xffffff),
  };
}

test('ZRLE round trip through an independent decoder, every pixel format, tiles cut at the edges', async () => {
  const fbs = screens();
  for (const [fname, pf] of Object.entries(formats)) {
    const conv = new PixelConverter(pf);
    const encoder = new ZrleEncoder();
    const decoder = new ZrleDecoder();
    const seen = decoder.subencodingsSeen;
    try {
      // Several rectangles through one stream, as on a connection.
      for (const [sname, fb] of Object.entries(fbs)) {
        for (const [x, y, w, h] of [[0, 0, W, H], [3, 5, 130, 70], [64, 64, 1, 1], [10, 0, 64, 65]] as const) {
          const body = encoder.encode(fb, W, x, y, w, h, conv);
          assert.equal(body.readUInt32BE(0), body.length - 4);
          const got = await decoder.decodeRect(body.subarray(4), w, h, pf);
          for (let row = 0; row < h; row++) {
            for (let col = 0; col < w; col++) {
              const want = conv.unpack(conv.pack(fb[(y + row) * W + x + col] ?? 0));
              const have = got[row * w + col];
              if (have !== want) assert.fail(`${fname}/${sname} ${w}x${h}+${x}+${y}: pixel ${col},${row} is ${have?.toString(16)}, want ${want.toString(16)}`);
            }
          }
        }
      }
      // The screens above make the encoder use every kind of tile (colour-poor formats merge some colours).
      const kinds = new Set([...seen].map((s) => (s >= 2 && s <= 16 ? 'packed' : s >= 130 ? 'palette RLE' : String(s))));
      const expected = pf.bitsPerPixel === 8 ? ['1', 'packed'] : ['0', '1', 'packed', '128', 'palette RLE'];
      for (const k of expected) assert.ok(kinds.has(k), `${fname}: no ${k} tile among ${[...kinds].join(', ')}`);
    } finally {
      decoder.close();
    }
  }
});

test('the stream starts with one zlib header and each rectangle ends in a sync flush', () => {
  const enc = new ZrleEncoder();
  const conv = new PixelConverter(RGB888_PIXEL_FORMAT);
  const fb = screens().text ?? new Uint32Array(0);
  const a = enc.encode(fb, W, 0, 0, W, H, conv).subarray(4);
  const b = enc.encode(fb, W, 0, 0, 8, 16, conv).subarray(4);
  assert.deepEqual([...a.subarray(0, 2)], [0x78, 0x9c]);
  for (const part of [a, b]) assert.deepEqual([...part.subarray(-4)], [0, 0, 0xff, 0xff]);
  // Together they are one zlib stream (unfinished: no adler32 trailer yet).
  const all = inflateSync(Buffer.concat([a, b]), { finishFlush: zc.Z_SYNC_FLUSH });
  assert.ok(all.length > 0);
});

test('a text-like screen compresses far below raw, a solid one to a few bytes', () => {
  const enc = new ZrleEncoder();
  const conv = new PixelConverter(RGB888_PIXEL_FORMAT);
  const fbs = screens();
  const text = enc.encode(fbs.text ?? new Uint32Array(0), W, 0, 0, W, H, conv);
  assert.ok(text.length < (W * H * 4) / 20, `text frame took ${text.length} bytes`);
  const solid = enc.encode(fbs.solid ?? new Uint32Array(0), W, 0, 0, W, H, conv);
  assert.ok(solid.length < 64, `solid frame took ${solid.length} bytes`);
});

test('CPIXEL is 3 bytes only where RFC 6143 7.7.6 says so', () => {
  const layouts = Object.fromEntries(Object.entries(formats).map(([k, pf]) => [k, cpixelLayout(pf)]));
  assert.deepEqual(layouts['rgb888 le'], { length: 3, shift: 0 });
  assert.deepEqual(layouts['high bytes be'], { length: 3, shift: 8 });
  assert.deepEqual(layouts['depth 32'], { length: 4, shift: 0 });
  assert.deepEqual(layouts['rgb565 le'], { length: 2, shift: 0 });
  assert.deepEqual(layouts.bgr233, { length: 1, shift: 0 });
});
