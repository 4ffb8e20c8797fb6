/**
 * An hour of a busy console, synthetic: 1024x768, a line of "text" changes every second and the
 * whole screen every minute, ZRLE in noVNC's pixel format (red in the low byte: the player is
 * noVNC, as the recorded browsers were). The playback system test plays it; the bench times its
 * seekable form.
 */
import {
  Encoding, PixelConverter, RGB888_PIXEL_FORMAT, ZrleEncoder, encodeFramebufferUpdateHeader, encodeRectangleHeader, encodeServerInit,
} from '../../src/rfb/index.js';

export const HOUR_WIDTH = 1024;
export const HOUR_HEIGHT = 768;

/**
 * Calls `serverInit` once, then `update(ms, bytes)` for each of the 3,600 updates (one a second).
 * Returns the screen at the end and after the update of second `middleSecond`.
 */
export function hourOfUpdates(serverInit: (bytes: Buffer) => void, update: (ms: number, bytes: Buffer) => void, middleSecond = 1800): { last: Uint32Array; middle: Uint32Array } {
  const W = HOUR_WIDTH;
  serverInit(encodeServerInit({ width: W, height: HOUR_HEIGHT, pixelFormat: RGB888_PIXEL_FORMAT, name: 'hour' }));
  const fb = new Uint32Array(W * HOUR_HEIGHT);
  const conv = new PixelConverter({ ...RGB888_PIXEL_FORMAT, redShift: 0, blueShift: 16 });
  const zrle = new ZrleEncoder();
  let middle = new Uint32Array(0);
  for (let s = 0; s < 3600; s++) {
    const full = s % 60 === 0;
    const [y, h] = full ? [0, HOUR_HEIGHT] : [(s * 16) % (HOUR_HEIGHT - 16), 16];
    for (let yy = y; yy < y + h; yy++) for (let x = 0; x < W; x++) fb[yy * W + x] = ((x >> 3) + s + (full ? yy : 0)) & 1 ? 0xe0e0e0 : 0x101820;
    const body = zrle.encode(fb, W, 0, y, W, h, conv);
    update(s * 1000, Buffer.concat([encodeFramebufferUpdateHeader(1), encodeRectangleHeader({ x: 0, y, width: W, height: h, encoding: Encoding.ZRLE }), body]));
    if (s === middleSecond) middle = fb.slice();
  }
  return { last: fb, middle };
}
