/**
 * ZRLE encoding (RFC 6143 7.7.6): 64x64 tiles, each solid, packed-palette, palette-RLE, plain-RLE
 * or raw, all compressed through one zlib stream per connection.
 */
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import type { PixelConverter, PixelFormat } from './pixel-format.js';

/** RFC 6143 7.7.6: tiles are 64x64 (smaller at the right and bottom edges). */
export const ZRLE_TILE_SIZE = 64;

/** RFC 6143 7.7.6: sub-encoding numbers. */
export const ZrleSubencoding = { Raw: 0, Solid: 1, PackedPaletteMin: 2, PackedPaletteMax: 16, PlainRle: 128, PaletteRleMin: 130 } as const;

/**
 * How many bytes a CPIXEL takes (RFC 6143 7.7.6): 3 when the format is true colour, 32 bits a
 * pixel, depth 24 or less, and all colour bits fit in the least (or else the most) significant
 * three bytes; otherwise the pixel size.
 */
export function cpixelLayout(pf: PixelFormat): { length: number; shift: number } {
  const bytes = pf.bitsPerPixel / 8;
  if (pf.bitsPerPixel !== 32 || !pf.trueColour || pf.depth > 24) return { length: bytes, shift: 0 };
  const mask = (pf.redMax * 2 ** pf.redShift + pf.greenMax * 2 ** pf.greenShift + pf.blueMax * 2 ** pf.blueShift) >>> 0;
  if (mask <= 0xffffff) return { length: 3, shift: 0 };
  if ((mask & 0xff) === 0) return { length: 3, shift: 8 };
  return { length: 4, shift: 0 };
}

/** Bytes a run length takes: (length - 1) as 255s then the rest (RFC 6143 7.7.6). */
function runLengthBytes(length: number): number {
  return Math.floor((length - 1) / 255) + 1;
}

/** Bits a packed-palette index takes for a palette of `n` colours (RFC 6143 7.7.6). */
function paletteIndexBits(n: number): number {
  return n <= 2 ? 1 : n <= 4 ? 2 : 4;
}

/** A growable output buffer for the uncompressed tile stream. */
class ByteSink {
  buf = Buffer.allocUnsafe(16 * 1024);
  length = 0;
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }
  runLength(length: number): void {
    let rest = length - 1;
    this.reserve(runLengthBytes(length));
    while (rest >= 255) {
      this.buf[this.length++] = 255;
      rest -= 255;
    }
    this.buf[this.length++] = rest;
  }
}

/**
 * A ZRLE rectangle's body from its tiles' bytes: u32 length, then the tiles deflated on their own
 * (no reference to earlier rectangles) ending in a sync flush, after the stream's zlib header when
 * `first`.
 */
export function zrleRectangleData(tiles: Buffer, first: boolean, level = 6): Buffer {
  const deflated = deflateRawSync(tiles, { level, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const header = first ? 2 : 0;
  const out = Buffer.allocUnsafe(4 + header + deflated.length);
  out.writeUInt32BE(header + deflated.length, 0);
  if (header) {
    // RFC 1950: CMF 0x78 (deflate, 32 KiB window), FLG 0x9c (default level, no dictionary).
    out[4] = 0x78;
    out[5] = 0x9c;
  }
  deflated.copy(out, 4 + header);
  return out;
}

/**
 * A ZRLE encoder for one connection. RFC 6143 7.7.6 requires one zlib stream for the whole
 * connection; this encoder emits one: a zlib header once, then, per rectangle, deflate blocks that
 * end in a sync flush. Each rectangle is compressed without references to earlier ones (a valid
 * part of the same stream), which lets this stay synchronous.
 */
export class ZrleEncoder {
  private headerSent = false;
  private readonly level: number;
  private readonly tile = new Uint32Array(ZRLE_TILE_SIZE * ZRLE_TILE_SIZE);
  private readonly palette: number[] = [];

  /** @param opts.level zlib level 0-9; default 6. */
  constructor(opts: { level?: number } = {}) {
    this.level = opts.level ?? 6;
  }

  /**
   * The rectangle body for ZRLE: u32 length, then that many bytes of zlib data. `src` is an RGB888
   * framebuffer (0xRRGGBB, `stride` pixels a row); `converter` gives the client's pixel format.
   */
  encode(src: Uint32Array, stride: number, x: number, y: number, width: number, height: number, converter: PixelConverter): Buffer {
    const sink = new ByteSink();
    const cp = cpixelLayout(converter.format);
    for (let ty = y; ty < y + height; ty += ZRLE_TILE_SIZE) {
      const th = Math.min(ZRLE_TILE_SIZE, y + height - ty);
      for (let tx = x; tx < x + width; tx += ZRLE_TILE_SIZE) {
        const tw = Math.min(ZRLE_TILE_SIZE, x + width - tx);
        this.encodeTile(sink, src, stride, tx, ty, tw, th, converter, cp);
      }
    }
    const out = zrleRectangleData(sink.buf.subarray(0, sink.length), !this.headerSent, this.level);
    this.headerSent = true;
    return out;
  }

  private encodeTile(sink: ByteSink, src: Uint32Array, stride: number, tx: number, ty: number, tw: number, th: number, conv: PixelConverter, cp: { length: number; shift: number }): void {
    const tile = this.tile;
    const palette = this.palette;
    palette.length = 0;
    const n = tw * th;
    let runs = 0;
    let runBytes = 0;
    let runLen = 0;
    let prev = -1;
    let lastRgb = -1;
    let lastValue = 0;
    for (let row = 0, i = 0; row < th; row++) {
      const base = (ty + row) * stride + tx;
      for (let col = 0; col < tw; col++, i++) {
        const rgb = src[base + col] ?? 0;
        if (rgb !== lastRgb) {
          lastRgb = rgb;
          lastValue = conv.pack(rgb);
        }
        const v = lastValue;
        tile[i] = v;
        // Palette of up to 128 colours (more means only raw or plain RLE can code the tile).
        if (palette.length <= 127 && (v !== prev || i === 0) && !palette.includes(v)) palette.push(v);
        if (i > 0 && v === prev) {
          runLen++;
        } else {
          if (i > 0) {
            runs++;
            runBytes += runLengthBytes(runLen);
          }
          runLen = 1;
        }
        prev = v;
      }
    }
    runs++;
    runBytes += runLengthBytes(runLen);

    const colours = palette.length;
    const c = cp.length;
    if (colours === 1) {
      sink.u8(ZrleSubencoding.Solid);
      this.cpixel(sink, conv, cp, tile[0] ?? 0);
      return;
    }
    const rawSize = n * c;
    const plainRleSize = runs * c + runBytes;
    const paletteRleSize = colours <= 127 ? colours * c + runs + runBytes : Infinity;
    const packedSize = colours <= 16 ? colours * c + th * Math.ceil((tw * paletteIndexBits(colours)) / 8) : Infinity;
    const best = Math.min(rawSize, plainRleSize, paletteRleSize, packedSize);

    if (best === packedSize) {
      sink.u8(colours);
      for (const p of palette) this.cpixel(sink, conv, cp, p);
      const bits = paletteIndexBits(colours);
      sink.reserve(th * Math.ceil((tw * bits) / 8));
      // Packed indices, most significant bits first, each row padded to a whole byte.
      for (let row = 0, i = 0; row < th; row++) {
        let byte = 0;
        let used = 0;
        for (let col = 0; col < tw; col++, i++) {
          byte = (byte << bits) | palette.indexOf(tile[i] ?? 0);
          used += bits;
          if (used === 8) {
            sink.buf[sink.length++] = byte;
            byte = 0;
            used = 0;
          }
        }
        if (used > 0) sink.buf[sink.length++] = (byte << (8 - used)) & 0xff;
      }
    } else if (best === paletteRleSize) {
      sink.u8(128 + colours);
      for (const p of palette) this.cpixel(sink, conv, cp, p);
      this.runs(tile, n, (v, len) => {
        const index = palette.indexOf(v);
        if (len === 1) sink.u8(index);
        else {
          sink.u8(index | 128);
          sink.runLength(len);
        }
      });
    } else if (best === plainRleSize) {
      sink.u8(ZrleSubencoding.PlainRle);
      this.runs(tile, n, (v, len) => {
        this.cpixel(sink, conv, cp, v);
        sink.runLength(len);
      });
    } else {
      sink.u8(ZrleSubencoding.Raw);
      for (let i = 0; i < n; i++) this.cpixel(sink, conv, cp, tile[i] ?? 0);
    }
  }

  private runs(tile: Uint32Array, n: number, emit: (value: number, length: number) => void): void {
    let start = 0;
    for (let i = 1; i <= n; i++) {
      if (i === n || tile[i] !== tile[start]) {
        emit(tile[start] ?? 0, i - start);
        start = i;
      }
    }
  }

  private cpixel(sink: ByteSink, conv: PixelConverter, cp: { length: number; shift: number }, value: number): void {
    sink.reserve(4);
    if (cp.length !== 3) {
      conv.write(sink.buf, sink.length, value);
      sink.length += cp.length;
      return;
    }
    // The three significant bytes, in the pixel format's byte order.
    const v = value >>> cp.shift;
    const b = sink.buf;
    let o = sink.length;
    if (conv.format.bigEndian) {
      b[o++] = (v >>> 16) & 0xff;
      b[o++] = (v >>> 8) & 0xff;
      b[o++] = v & 0xff;
    } else {
      b[o++] = v & 0xff;
      b[o++] = (v >>> 8) & 0xff;
      b[o++] = (v >>> 16) & 0xff;
    }
    sink.length = o;
  }
}
