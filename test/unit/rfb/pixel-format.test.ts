import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import {
  PixelConverter,
  RGB888_PIXEL_FORMAT,
  decodePixelFormat,
  encodePixelFormat,
  pixelFormatProblem,
  samePixelFormat,
  validatePixelFormat,
  type PixelFormat,
} from '../../../src/rfb/pixel-format.js';

const rgb565: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: false, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
const bgr233: PixelFormat = { bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };
/** What noVNC asks for: 32 bpp, depth 24, little-endian, red in the lowest byte. */
const novnc: PixelFormat = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 };

test('PIXEL_FORMAT encodes to the 16 bytes of RFC 6143 7.4 and decodes back', () => {
  const buf = encodePixelFormat(rgb565);
  assert.equal(buf.toString('hex'), '1010000100' + '1f003f001f' + '0b0500' + '000000');
  assert.deepEqual(decodePixelFormat(buf), rgb565);
  for (const pf of [RGB888_PIXEL_FORMAT, bgr233, novnc, { ...rgb565, bigEndian: true }]) {
    assert.deepEqual(decodePixelFormat(encodePixelFormat(pf)), pf);
    assert.ok(samePixelFormat(decodePixelFormat(encodePixelFormat(pf)), pf));
  }
  assert.equal(samePixelFormat(rgb565, { ...rgb565, bigEndian: true }), false);
});

test('validation names what is wrong', () => {
  const cases: Array<[Partial<PixelFormat>, RegExp]> = [
    [{ bitsPerPixel: 24 }, /bits-per-pixel must be 8, 16 or 32, got 24/],
    [{ depth: 0 }, /depth must be 1..16/],
    [{ depth: 17 }, /depth must be 1..16/],
    [{ redMax: 30 }, /red-max must be 2\^n-1/],
    [{ greenMax: 0 }, /green-max must be 2\^n-1/],
    [{ blueShift: 14 }, /blue channel .* does not fit in 16 bits/],
    [{ greenShift: 4 }, /channel overlaps another channel/],
  ];
  for (const [change, message] of cases) {
    const pf = { ...rgb565, ...change };
    assert.match(pixelFormatProblem(pf) ?? '', message);
    assert.throws(() => validatePixelFormat(pf), (e: unknown) => e instanceof ProtocolError && message.test(e.message));
  }
  assert.equal(pixelFormatProblem(rgb565), undefined);
  // A colour-map format is valid RFB; its max/shift fields are not looked at.
  assert.equal(pixelFormatProblem({ ...bgr233, trueColour: false, redMax: 0 }), undefined);
  assert.throws(() => new PixelConverter({ ...bgr233, trueColour: false }), /only true-colour/);
});

test('conversion to 8, 16 and 32 bpp in both byte orders', () => {
  const red = 0xff0000;
  const c565le = new PixelConverter(rgb565);
  const c565be = new PixelConverter({ ...rgb565, bigEndian: true });
  const out = Buffer.alloc(4);
  assert.equal(c565le.pack(red), 0xf800);
  c565le.write(out, 0, c565le.pack(red));
  assert.deepEqual([...out.subarray(0, 2)], [0x00, 0xf8]);
  c565be.write(out, 0, c565be.pack(red));
  assert.deepEqual([...out.subarray(0, 2)], [0xf8, 0x00]);

  const c8 = new PixelConverter(bgr233);
  assert.equal(c8.pack(0x0000ff), 0b11000000);
  assert.equal(c8.pack(0x00ff00), 0b00111000);
  assert.equal(c8.pack(0xffffff), 0xff);

  const cn = new PixelConverter(novnc);
  cn.write(out, 0, cn.pack(0x112233));
  assert.deepEqual([...out], [0x11, 0x22, 0x33, 0x00]);
  const cbe = new PixelConverter({ ...RGB888_PIXEL_FORMAT, bigEndian: true });
  cbe.write(out, 0, cbe.pack(0x112233));
  assert.deepEqual([...out], [0x00, 0x11, 0x22, 0x33]);
  assert.equal(cbe.read(out, 0), 0x112233);
});

test('unpack(pack(c)) gives the colour back within the format precision', () => {
  const colours = [0x000000, 0xffffff, 0xff0000, 0x00ff00, 0x0000ff, 0x808080, 0x1e90ff, 0xaabbcc];
  for (const pf of [RGB888_PIXEL_FORMAT, novnc, rgb565, bgr233]) {
    const c = new PixelConverter(pf);
    const tolerance = Math.ceil(255 / Math.min(pf.redMax, pf.greenMax, pf.blueMax));
    for (const colour of colours) {
      const back = c.unpack(c.pack(colour));
      for (const shift of [16, 8, 0]) {
        const d = Math.abs(((back >> shift) & 0xff) - ((colour >> shift) & 0xff));
        assert.ok(d <= tolerance, `${pf.bitsPerPixel} bpp: ${colour.toString(16)} came back as ${back.toString(16)}`);
      }
    }
    // The extremes are exact in every format.
    assert.equal(c.unpack(c.pack(0xffffff)), 0xffffff);
    assert.equal(c.unpack(c.pack(0)), 0);
  }
});

test('encodeRect converts a rectangle of the RGB888 framebuffer row by row', () => {
  const stride = 4;
  const fb = new Uint32Array(stride * 3);
  fb.forEach((_, i) => (fb[i] = i * 0x010101));
  const c = new PixelConverter(RGB888_PIXEL_FORMAT);
  const raw = c.encodeRect(fb, stride, 1, 1, 2, 2);
  assert.equal(raw.length, 16);
  assert.deepEqual([0, 4, 8, 12].map((o) => raw.readUInt32LE(o)), [5, 6, 9, 10].map((i) => i * 0x010101));
  const c16 = new PixelConverter({ ...rgb565, bigEndian: true });
  assert.equal(c16.encodeRect(fb, stride, 0, 0, 4, 3).length, 24);
});
