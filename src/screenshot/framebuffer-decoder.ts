/**
 * An RFB client's framebuffer (RFC 6143 7.6-7.7), for screenshots: reads server messages from a
 * {@link ByteReader} and paints Raw, CopyRect, Hextile and ZRLE rectangles into RGB888 pixels
 * (0xRRGGBB). The client asks for {@link SCREENSHOT_PIXEL_FORMAT}, so every pixel is 4 bytes
 * little-endian on the wire (3 in ZRLE's CPIXEL). Every length and rectangle is checked against
 * the framebuffer before it is read: a hostile server gets a ProtocolError, never a crash or an
 * unbounded allocation.
 */
import { constants as zlibConstants, createInflate, type Inflate } from 'node:zlib';
import { ProtocolError } from '../errors.js';
import { ByteReader, Encoding, RGB888_PIXEL_FORMAT, ServerMessageType, decodeRectangleHeader, type PixelFormat } from '../rfb/index.js';

/** 32 bits a pixel, depth 24, little-endian, 0x00RRGGBB. */
export const SCREENSHOT_PIXEL_FORMAT: Readonly<PixelFormat> = RGB888_PIXEL_FORMAT;

/** What we ask for, in order of preference: the compact ones first. */
export const SCREENSHOT_ENCODINGS: readonly number[] = [Encoding.ZRLE, Encoding.Hextile, Encoding.CopyRect, Encoding.Raw, Encoding.DesktopSize, Encoding.LastRect];

/** Largest framebuffer we accept (pixels a side): far above any console. */
export const MAX_SIDE = 8192;
/** A ServerCutText longer than this is a hostile server, not a clipboard. */
const MAX_CUT_TEXT = 16 * 1024 * 1024;

const HEXTILE_RAW = 1;
const HEXTILE_BACKGROUND = 2;
const HEXTILE_FOREGROUND = 4;
const HEXTILE_ANY_SUBRECTS = 8;
const HEXTILE_SUBRECTS_COLOURED = 16;

/** The result of one FramebufferUpdate. */
export interface UpdateResult {
  /** Every pixel has been painted at least once since the framebuffer was (re)sized. */
  readonly complete: boolean;
}

/** Decodes one connection's ZRLE zlib stream (one stream for every rectangle, RFC 6143 7.7.6). */
export class ZlibStream {
  private readonly inflate: Inflate = createInflate();
  private out: Buffer[] = [];
  private outLength = 0;
  private limit = 0;
  private failure: Error | null = null;

  constructor() {
    this.inflate.on('data', (b: Buffer) => {
      this.outLength += b.length;
      if (this.outLength > this.limit) this.failure ??= new ProtocolError('ZRLE data inflates beyond its rectangle');
      else this.out.push(b);
    });
    this.inflate.on('error', (e: Error) => (this.failure ??= new ProtocolError(`ZRLE data is not valid zlib: ${e.message}`)));
  }

  /** Inflates one rectangle's data (at most `limit` bytes out). */
  async take(data: Buffer, limit: number): Promise<Buffer> {
    this.out = [];
    this.outLength = 0;
    this.limit = limit;
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve) => {
      // A stream that fails never calls the flush back.
      const onError = (): void => resolve();
      this.inflate.once('error', onError);
      this.inflate.write(data);
      this.inflate.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        this.inflate.off('error', onError);
        resolve();
      });
    });
    if (this.failure) throw this.failure;
    return this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
  }

  close(): void {
    this.inflate.close();
  }
}

/** Reads bytes of an inflated ZRLE rectangle, failing cleanly when they run out. */
class Cursor {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  u8(): number {
    if (this.pos >= this.buf.length) throw new ProtocolError('ZRLE tile data ends early');
    return this.buf[this.pos++]!;
  }
  /** A 3-byte CPIXEL (little-endian: blue, green, red). */
  cpixel(): number {
    if (this.pos + 3 > this.buf.length) throw new ProtocolError('ZRLE tile data ends early');
    const b = this.buf;
    const p = this.pos;
    this.pos += 3;
    return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
  }
  runLength(): number {
    let n = 1;
    for (;;) {
      const v = this.u8();
      n += v;
      if (v !== 255) return n;
      if (n > 64 * 64) throw new ProtocolError('ZRLE run longer than its tile');
    }
  }
}

export class FramebufferDecoder {
  width: number;
  height: number;
  pixels: Uint32Array;
  /** One byte a pixel: painted since the last resize. */
  private painted: Uint8Array;
  private paintedCount = 0;
  private zlib: ZlibStream | null = null;

  constructor(private readonly reader: ByteReader, width: number, height: number, private readonly signal?: AbortSignal) {
    checkSize(width, height);
    this.width = width;
    this.height = height;
    this.pixels = new Uint32Array(width * height);
    this.painted = new Uint8Array(width * height);
  }

  private read(n: number): Promise<Buffer> {
    return this.reader.readExactly(n, this.signal ? { signal: this.signal } : {});
  }

  /**
   * Reads server messages until one FramebufferUpdate has been applied (other messages are read
   * and dropped). Rejects with ProtocolError on anything we did not ask for or cannot decode.
   */
  async nextUpdate(): Promise<UpdateResult> {
    for (;;) {
      const type = (await this.read(1))[0]!;
      switch (type) {
        case ServerMessageType.FramebufferUpdate: {
          const head = await this.read(3);
          await this.readRectangles(head.readUInt16BE(1));
          return { complete: this.paintedCount === this.width * this.height };
        }
        case ServerMessageType.SetColourMapEntries: {
          const head = await this.read(5);
          const count = head.readUInt16BE(3);
          if (count > 0) await this.read(6 * count);
          break;
        }
        case ServerMessageType.Bell:
          break;
        case ServerMessageType.ServerCutText: {
          const head = await this.read(7);
          const length = Math.abs(head.readInt32BE(3));
          if (length > MAX_CUT_TEXT) throw new ProtocolError(`ServerCutText of ${length} bytes`);
          for (let left = length; left > 0; left -= 64 * 1024) await this.read(Math.min(64 * 1024, left));
          break;
        }
        default:
          throw new ProtocolError(`unexpected server message type ${type}`);
      }
    }
  }

  close(): void {
    this.zlib?.close();
    this.zlib = null;
  }

  private async readRectangles(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const r = decodeRectangleHeader(await this.read(12));
      if (r.encoding === Encoding.LastRect) return;
      if (r.encoding === Encoding.DesktopSize) {
        this.resize(r.width, r.height);
        continue;
      }
      if (r.x + r.width > this.width || r.y + r.height > this.height) {
        throw new ProtocolError(`rectangle ${r.width}x${r.height}+${r.x}+${r.y} outside the ${this.width}x${this.height} framebuffer`);
      }
      if (r.width === 0 || r.height === 0) continue;
      switch (r.encoding) {
        case Encoding.Raw:
          await this.raw(r.x, r.y, r.width, r.height);
          break;
        case Encoding.CopyRect: {
          const src = await this.read(4);
          this.copyRect(src.readUInt16BE(0), src.readUInt16BE(2), r.x, r.y, r.width, r.height);
          break;
        }
        case Encoding.Hextile:
          await this.hextile(r.x, r.y, r.width, r.height);
          break;
        case Encoding.ZRLE:
          await this.zrle(r.x, r.y, r.width, r.height);
          break;
        default:
          throw new ProtocolError(`rectangle in encoding ${r.encoding}, which was not asked for`);
      }
      this.markPainted(r.x, r.y, r.width, r.height);
    }
  }

  private resize(width: number, height: number): void {
    checkSize(width, height);
    this.width = width;
    this.height = height;
    this.pixels = new Uint32Array(width * height);
    this.painted = new Uint8Array(width * height);
    this.paintedCount = 0;
  }

  private markPainted(x: number, y: number, w: number, h: number): void {
    if (this.paintedCount === this.width * this.height) return;
    const painted = this.painted;
    for (let row = y; row < y + h; row++) {
      const base = row * this.width;
      for (let i = base + x; i < base + x + w; i++) {
        if (painted[i] === 0) {
          painted[i] = 1;
          this.paintedCount++;
        }
      }
    }
  }

  private async raw(x: number, y: number, w: number, h: number): Promise<void> {
    // Row by row: a full screen is never one allocation of the server's choosing beyond a row.
    const rowsAtOnce = Math.max(1, Math.floor((256 * 1024) / (w * 4)));
    for (let row = 0; row < h; row += rowsAtOnce) {
      const rows = Math.min(rowsAtOnce, h - row);
      const data = await this.read(rows * w * 4);
      for (let j = 0; j < rows; j++) {
        const base = (y + row + j) * this.width + x;
        for (let i = 0; i < w; i++) this.pixels[base + i] = data.readUInt32LE((j * w + i) * 4) & 0xffffff;
      }
    }
  }

  private copyRect(sx: number, sy: number, x: number, y: number, w: number, h: number): void {
    if (sx + w > this.width || sy + h > this.height) throw new ProtocolError('CopyRect source outside the framebuffer');
    const copy = new Uint32Array(w * h);
    for (let row = 0; row < h; row++) copy.set(this.pixels.subarray((sy + row) * this.width + sx, (sy + row) * this.width + sx + w), row * w);
    for (let row = 0; row < h; row++) this.pixels.set(copy.subarray(row * w, row * w + w), (y + row) * this.width + x);
  }

  private fill(x: number, y: number, w: number, h: number, rgb: number): void {
    for (let row = y; row < y + h; row++) this.pixels.fill(rgb, row * this.width + x, row * this.width + x + w);
  }

  private async pixel(): Promise<number> {
    return (await this.read(4)).readUInt32LE(0) & 0xffffff;
  }

  /** RFC 6143 7.7.4: 16x16 tiles, left to right, top to bottom; colours carry over between tiles. */
  private async hextile(x: number, y: number, w: number, h: number): Promise<void> {
    let bg = 0;
    let fg = 0;
    for (let ty = y; ty < y + h; ty += 16) {
      const th = Math.min(16, y + h - ty);
      for (let tx = x; tx < x + w; tx += 16) {
        const tw = Math.min(16, x + w - tx);
        const sub = (await this.read(1))[0]!;
        if (sub & HEXTILE_RAW) {
          await this.raw(tx, ty, tw, th);
          continue;
        }
        if (sub & HEXTILE_BACKGROUND) bg = await this.pixel();
        if (sub & HEXTILE_FOREGROUND) fg = await this.pixel();
        this.fill(tx, ty, tw, th, bg);
        if (!(sub & HEXTILE_ANY_SUBRECTS)) continue;
        const n = (await this.read(1))[0]!;
        const coloured = (sub & HEXTILE_SUBRECTS_COLOURED) !== 0;
        const data = await this.read(n * (coloured ? 6 : 2));
        for (let i = 0, p = 0; i < n; i++) {
          let colour = fg;
          if (coloured) {
            colour = data.readUInt32LE(p) & 0xffffff;
            p += 4;
          }
          const xy = data[p++]!;
          const wh = data[p++]!;
          const sx = xy >> 4;
          const sy = xy & 15;
          const sw = (wh >> 4) + 1;
          const sh = (wh & 15) + 1;
          if (sx + sw > tw || sy + sh > th) throw new ProtocolError('Hextile subrectangle outside its tile');
          this.fill(tx + sx, ty + sy, sw, sh, colour);
        }
      }
    }
  }

  /** RFC 6143 7.7.6: u32 length, zlib data of 64x64 tiles. */
  private async zrle(x: number, y: number, w: number, h: number): Promise<void> {
    const length = (await this.read(4)).readUInt32BE(0);
    // The most a rectangle's tiles can take (raw CPIXELs, a byte per tile), with room for zlib.
    const tiles = Math.ceil(w / 64) * Math.ceil(h / 64);
    const maxInflated = w * h * 3 + tiles;
    if (length > maxInflated + 1024 * 1024) throw new ProtocolError(`ZRLE rectangle of ${length} bytes for ${w}x${h} pixels`);
    const chunks: Buffer[] = [];
    for (let left = length; left > 0; left -= 1024 * 1024) chunks.push(await this.read(Math.min(1024 * 1024, left)));
    this.zlib ??= new ZlibStream();
    const c = new Cursor(await this.zlib.take(Buffer.concat(chunks), maxInflated));
    for (let ty = y; ty < y + h; ty += 64) {
      const th = Math.min(64, y + h - ty);
      for (let tx = x; tx < x + w; tx += 64) this.zrleTile(c, tx, ty, Math.min(64, x + w - tx), th);
    }
  }

  private zrleTile(c: Cursor, tx: number, ty: number, tw: number, th: number): void {
    const sub = c.u8();
    const width = this.width;
    const px = this.pixels;
    const n = tw * th;
    const put = (i: number, rgb: number): void => {
      px[(ty + Math.floor(i / tw)) * width + tx + (i % tw)] = rgb;
    };
    if (sub === 0) {
      for (let i = 0; i < n; i++) put(i, c.cpixel());
    } else if (sub === 1) {
      this.fill(tx, ty, tw, th, c.cpixel());
    } else if (sub >= 2 && sub <= 16) {
      const palette: number[] = [];
      for (let i = 0; i < sub; i++) palette.push(c.cpixel());
      const bits = sub === 2 ? 1 : sub <= 4 ? 2 : 4;
      const perByte = 8 / bits;
      const mask = (1 << bits) - 1;
      for (let row = 0; row < th; row++) {
        let byte = 0;
        for (let col = 0; col < tw; col++) {
          if (col % perByte === 0) byte = c.u8();
          const index = (byte >> (8 - bits * ((col % perByte) + 1))) & mask;
          const colour = palette[index];
          if (colour === undefined) throw new ProtocolError('ZRLE palette index beyond its palette');
          px[(ty + row) * width + tx + col] = colour;
        }
      }
    } else if (sub === 128) {
      for (let i = 0; i < n; ) {
        const colour = c.cpixel();
        const run = c.runLength();
        if (i + run > n) throw new ProtocolError('ZRLE run longer than its tile');
        for (let k = 0; k < run; k++) put(i++, colour);
      }
    } else if (sub >= 130) {
      const palette: number[] = [];
      for (let i = 0; i < sub - 128; i++) palette.push(c.cpixel());
      for (let i = 0; i < n; ) {
        const v = c.u8();
        const colour = palette[v & 127];
        if (colour === undefined) throw new ProtocolError('ZRLE palette index beyond its palette');
        const run = v & 128 ? c.runLength() : 1;
        if (i + run > n) throw new ProtocolError('ZRLE run longer than its tile');
        for (let k = 0; k < run; k++) put(i++, colour);
      }
    } else {
      throw new ProtocolError(`ZRLE sub-encoding ${sub} is not defined`);
    }
  }
}

function checkSize(width: number, height: number): void {
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) throw new ProtocolError(`framebuffer of ${width}x${height} pixels`);
}
