/**
 * Our ZRLE stream through noVNC's own decoder (the browser's side of the console), run in Node with
 * a stand-in for its socket and display.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PixelConverter, RGB888_PIXEL_FORMAT, type PixelFormat } from '../../../src/rfb/pixel-format.js';
import { ZrleEncoder } from '../../../src/rfb/zrle-encoder.js';

interface NoVncDecoder {
  decodeRect(x: number, y: number, w: number, h: number, sock: unknown, display: unknown, depth: number): boolean;
}

/** What noVNC sends in SetPixelFormat for depth 24 (core/rfb.js RFB.messages.pixelFormat). */
const NOVNC_FORMAT: PixelFormat = { ...RGB888_PIXEL_FORMAT, redShift: 0, greenShift: 8, blueShift: 16 };

async function loadNoVncZrle(): Promise<new () => NoVncDecoder> {
  // The package exports only core/rfb.js; the decoder sits beside it.
  const rfb = createRequire(import.meta.url).resolve('@novnc/novnc');
  const mod = (await import(pathToFileURL(join(dirname(rfb), 'decoders', 'zrle.js')).href)) as { default: new () => NoVncDecoder };
  return mod.default;
}

/** noVNC's Websock receive queue, as far as the decoder uses it. */
function fakeSock(data: Buffer) {
  let pos = 0;
  return {
    rQwait: (_what: string, n: number) => data.length - pos < n,
    rQshift32: () => {
      const v = data.readUInt32BE(pos);
      pos += 4;
      return v;
    },
    rQshiftBytes: (n: number) => {
      const out = new Uint8Array(data.subarray(pos, pos + n));
      pos += n;
      return out;
    },
    left: () => data.length - pos,
  };
}

/** noVNC's Display, as far as the decoder uses it: RGBA blits and RGB fills into an RGB888 screen. */
function fakeDisplay(width: number, height: number) {
  const fb = new Uint32Array(width * height);
  return {
    fb,
    blitImage(x: number, y: number, w: number, h: number, arr: Uint8Array, offset: number) {
      for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
        const o = offset + (r * w + c) * 4;
        fb[(y + r) * width + x + c] = ((arr[o] ?? 0) << 16) | ((arr[o + 1] ?? 0) << 8) | (arr[o + 2] ?? 0);
      }
    },
    fillRect(x: number, y: number, w: number, h: number, color: number[]) {
      const v = ((color[0] ?? 0) << 16) | ((color[1] ?? 0) << 8) | (color[2] ?? 0);
      for (let r = 0; r < h; r++) fb.fill(v, (y + r) * width + x, (y + r) * width + x + w);
    },
  };
}

test('noVNC 1.7 decodes our ZRLE rectangles, one zlib stream across them', async () => {
  const Decoder = await loadNoVncZrle();
  const W = 300;
  const H = 200;
  const fb = new Uint32Array(W * H);
  let seed = 7;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      // Left: text-like two colours; middle: stripes; right: noise (raw tiles).
      fb[y * W + x] = x < 100 ? ((x * 5 + y * 3) % 7 < 2 ? 0xaaaaaa : 0) : x < 200 ? (x >> 3) * 0x050a0f : seed >>> 8;
    }
  }
  const conv = new PixelConverter(NOVNC_FORMAT);
  const encoder = new ZrleEncoder();
  const decoder = new Decoder();
  const display = fakeDisplay(W, H);
  for (const [x, y, w, h] of [[0, 0, W, H], [5, 7, 130, 90], [299, 199, 1, 1], [64, 0, 64, 200]] as const) {
    const body = encoder.encode(fb, W, x, y, w, h, conv);
    const sock = fakeSock(body);
    assert.equal(decoder.decodeRect(x, y, w, h, sock, display, 24), true);
    assert.equal(sock.left(), 0);
  }
  for (let i = 0; i < W * H; i++) if (display.fb[i] !== fb[i]) assert.fail(`pixel ${i % W},${Math.floor(i / W)}: ${display.fb[i]?.toString(16)} != ${fb[i]?.toString(16)}`);
});
