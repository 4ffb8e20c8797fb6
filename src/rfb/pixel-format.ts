/**
 * RFC 6143 7.4: PIXEL_FORMAT, and conversion between our internal RGB888 pixels and a client's
 * true-colour format. Internally a pixel is a number 0xRRGGBB (8 bits a channel).
 */
import { ProtocolError } from '../errors.js';

/** RFC 6143 7.4: the 16-byte PIXEL_FORMAT structure, decoded. */
export interface PixelFormat {
  /** 8, 16 or 32. */
  bitsPerPixel: number;
  /** Useful bits in a pixel value; at most bitsPerPixel. */
  depth: number;
  /** Byte order of multi-byte pixels on the wire. */
  bigEndian: boolean;
  /** True colour (channels packed by max/shift) rather than a colour map. */
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** RFC 6143 7.4: PIXEL_FORMAT is 16 bytes (13 used, 3 padding). */
export const PIXEL_FORMAT_LENGTH = 16;

/** 32 bits a pixel, depth 24, little-endian, 0x00RRGGBB: what the demo server announces. */
export const RGB888_PIXEL_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
});

/** Writes `pf` as the 16-byte PIXEL_FORMAT into `target` at `offset` (a new buffer by default). */
export function encodePixelFormat(pf: PixelFormat, target: Buffer = Buffer.alloc(PIXEL_FORMAT_LENGTH), offset = 0): Buffer {
  // RFC 6143 7.4: u8 bpp, u8 depth, u8 big-endian, u8 true-colour, u16 max x3, u8 shift x3, 3 padding
  target.writeUInt8(pf.bitsPerPixel, offset);
  target.writeUInt8(pf.depth, offset + 1);
  target.writeUInt8(pf.bigEndian ? 1 : 0, offset + 2);
  target.writeUInt8(pf.trueColour ? 1 : 0, offset + 3);
  target.writeUInt16BE(pf.redMax, offset + 4);
  target.writeUInt16BE(pf.greenMax, offset + 6);
  target.writeUInt16BE(pf.blueMax, offset + 8);
  target.writeUInt8(pf.redShift, offset + 10);
  target.writeUInt8(pf.greenShift, offset + 11);
  target.writeUInt8(pf.blueShift, offset + 12);
  target.fill(0, offset + 13, offset + PIXEL_FORMAT_LENGTH);
  return target;
}

/** Reads the 16-byte PIXEL_FORMAT at `offset`. No validation: see {@link pixelFormatProblem}. */
export function decodePixelFormat(buf: Buffer, offset = 0): PixelFormat {
  if (buf.length < offset + PIXEL_FORMAT_LENGTH) throw new RangeError('PIXEL_FORMAT needs 16 bytes');
  return {
    bitsPerPixel: buf.readUInt8(offset),
    depth: buf.readUInt8(offset + 1),
    // RFC 6143 7.4: the flags are "non-zero (true)"
    bigEndian: buf.readUInt8(offset + 2) !== 0,
    trueColour: buf.readUInt8(offset + 3) !== 0,
    redMax: buf.readUInt16BE(offset + 4),
    greenMax: buf.readUInt16BE(offset + 6),
    blueMax: buf.readUInt16BE(offset + 8),
    redShift: buf.readUInt8(offset + 10),
    greenShift: buf.readUInt8(offset + 11),
    blueShift: buf.readUInt8(offset + 12),
  };
}

function bitLength(max: number): number {
  return max === 0 ? 0 : 32 - Math.clz32(max);
}

/**
 * Why `pf` is unusable, or undefined when it is fine. Colour-map formats are valid here (only their
 * size is checked); whether to accept them is the caller's choice.
 */
export function pixelFormatProblem(pf: PixelFormat): string | undefined {
  const bpp = pf.bitsPerPixel;
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) return `bits-per-pixel must be 8, 16 or 32, got ${bpp}`;
  if (pf.depth < 1 || pf.depth > bpp) return `depth must be 1..${bpp}, got ${pf.depth}`;
  if (!pf.trueColour) return undefined;
  let used = 0;
  for (const [name, max, shift] of [
    ['red', pf.redMax, pf.redShift],
    ['green', pf.greenMax, pf.greenShift],
    ['blue', pf.blueMax, pf.blueShift],
  ] as const) {
    const bits = bitLength(max);
    // A channel max is 2^n - 1 (RFC 6143 7.4: "maximum ... value (= 2^n - 1 where n is the number of bits)").
    if (max === 0 || max !== 2 ** bits - 1) return `${name}-max must be 2^n-1 and non-zero, got ${max}`;
    if (shift + bits > bpp) return `${name} channel (max ${max}, shift ${shift}) does not fit in ${bpp} bits`;
    const mask = ((2 ** bits - 1) * 2 ** shift) >>> 0;
    if ((used & mask) !== 0) return `${name} channel overlaps another channel`;
    used = (used | mask) >>> 0;
  }
  return undefined;
}

/** Throws a ProtocolError naming the problem when `pf` is unusable. */
export function validatePixelFormat(pf: PixelFormat): void {
  const problem = pixelFormatProblem(pf);
  if (problem !== undefined) throw new ProtocolError(`invalid pixel format: ${problem}`);
}

/** Two pixel formats describe the same wire pixels. */
export function samePixelFormat(a: PixelFormat, b: PixelFormat): boolean {
  return (
    a.bitsPerPixel === b.bitsPerPixel &&
    a.depth === b.depth &&
    a.bigEndian === b.bigEndian &&
    a.trueColour === b.trueColour &&
    (!a.trueColour ||
      (a.redMax === b.redMax &&
        a.greenMax === b.greenMax &&
        a.blueMax === b.blueMax &&
        a.redShift === b.redShift &&
        a.greenShift === b.greenShift &&
        a.blueShift === b.blueShift))
  );
}

function scaleChannel(value: number, fromMax: number, toMax: number): number {
  return fromMax === toMax ? value : Math.floor((value * toMax + (fromMax >> 1)) / fromMax);
}

/**
 * Converts RGB888 pixels (0xRRGGBB) to one true-colour pixel format and back.
 * Packed values are cached: a text console has a handful of colours.
 */
export class PixelConverter {
  readonly format: Readonly<PixelFormat>;
  /** 1, 2 or 4. */
  readonly bytesPerPixel: 1 | 2 | 4;
  private readonly cache = new Map<number, number>();

  constructor(format: PixelFormat) {
    validatePixelFormat(format);
    if (!format.trueColour) throw new ProtocolError('invalid pixel format: only true-colour formats can be converted');
    this.format = Object.freeze({ ...format });
    this.bytesPerPixel = (format.bitsPerPixel / 8) as 1 | 2 | 4;
  }

  /** The pixel value (an unsigned integer of bitsPerPixel bits) for RGB888 colour `rgb`. */
  pack(rgb: number): number {
    let v = this.cache.get(rgb);
    if (v === undefined) {
      const f = this.format;
      const r = scaleChannel((rgb >>> 16) & 0xff, 255, f.redMax);
      const g = scaleChannel((rgb >>> 8) & 0xff, 255, f.greenMax);
      const b = scaleChannel(rgb & 0xff, 255, f.blueMax);
      v = (r * 2 ** f.redShift + g * 2 ** f.greenShift + b * 2 ** f.blueShift) >>> 0;
      if (this.cache.size < 4096) this.cache.set(rgb, v);
    }
    return v;
  }

  /** The RGB888 colour (0xRRGGBB) of pixel value `value`. */
  unpack(value: number): number {
    const f = this.format;
    const r = scaleChannel(Math.floor(value / 2 ** f.redShift) & f.redMax, f.redMax, 255);
    const g = scaleChannel(Math.floor(value / 2 ** f.greenShift) & f.greenMax, f.greenMax, 255);
    const b = scaleChannel(Math.floor(value / 2 ** f.blueShift) & f.blueMax, f.blueMax, 255);
    return (r << 16) | (g << 8) | b;
  }

  /** Writes pixel value `value` at `offset` in the format's size and byte order. */
  write(buf: Buffer, offset: number, value: number): void {
    switch (this.bytesPerPixel) {
      case 1:
        buf[offset] = value & 0xff;
        return;
      case 2:
        if (this.format.bigEndian) buf.writeUInt16BE(value & 0xffff, offset);
        else buf.writeUInt16LE(value & 0xffff, offset);
        return;
      case 4:
        if (this.format.bigEndian) buf.writeUInt32BE(value >>> 0, offset);
        else buf.writeUInt32LE(value >>> 0, offset);
    }
  }

  /** Reads the pixel value at `offset`. */
  read(buf: Buffer, offset: number): number {
    switch (this.bytesPerPixel) {
      case 1:
        return buf.readUInt8(offset);
      case 2:
        return this.format.bigEndian ? buf.readUInt16BE(offset) : buf.readUInt16LE(offset);
      case 4:
        return this.format.bigEndian ? buf.readUInt32BE(offset) : buf.readUInt32LE(offset);
    }
  }

  /**
   * Encodes a rectangle of an RGB888 framebuffer (row-major, `stride` pixels a row) as raw pixels
   * in this format (RFC 6143 7.7.1: Raw is width*height pixels, left to right, top to bottom).
   */
  encodeRect(src: Uint32Array, stride: number, x: number, y: number, width: number, height: number): Buffer {
    const bpp = this.bytesPerPixel;
    const out = Buffer.allocUnsafe(width * height * bpp);
    let o = 0;
    let lastRgb = -1;
    let lastValue = 0;
    for (let row = y; row < y + height; row++) {
      let i = row * stride + x;
      const end = i + width;
      for (; i < end; i++) {
        const rgb = src[i] ?? 0;
        if (rgb !== lastRgb) {
          lastRgb = rgb;
          lastValue = this.pack(rgb);
        }
        this.write(out, o, lastValue);
        o += bpp;
      }
    }
    return out;
  }
}
