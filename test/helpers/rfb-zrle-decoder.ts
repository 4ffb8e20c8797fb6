/**
 * A ZRLE decoder (RFC 6143 7.7.6) for the test client, written from the RFC and independently of
 * src/rfb/zrle-encoder.ts so that a round trip through both means something.
 */
import { constants as zlibConstants, createInflate, type Inflate } from 'node:zlib';
import { PixelConverter, type PixelFormat } from '../../src/rfb/pixel-format.js';

const TILE = 64;

/** Decodes the ZRLE rectangles of one connection (one zlib stream for all of them). */
export class ZrleDecoder {
  private readonly inflate: Inflate = createInflate();
  private failure: Error | undefined;
  private output: Buffer[] = [];
  /** Sub-encodings met so far (tests check the encoder uses each kind). */
  readonly subencodingsSeen = new Set<number>();

  constructor() {
    this.inflate.on('data', (b: Buffer) => this.output.push(b));
    this.inflate.on('error', (e: Error) => (this.failure = e));
  }

  /**
   * Decodes one rectangle's zlib data into RGB888 pixels (0xRRGGBB, row-major, width*height).
   * Throws when the data does not hold exactly the tiles of a width x height rectangle.
   */
  async decodeRect(data: Buffer, width: number, height: number, pf: PixelFormat): Promise<Uint32Array> {
    const raw = await this.inflateChunk(data);
    const conv = new PixelConverter(pf);
    const out = new Uint32Array(width * height);
    const cursor = new Cursor(raw, pf, conv);
    for (let ty = 0; ty < height; ty += TILE) {
      const th = Math.min(TILE, height - ty);
      for (let tx = 0; tx < width; tx += TILE) {
        const tw = Math.min(TILE, width - tx);
        const put = (i: number, rgb: number): void => {
          out[(ty + Math.floor(i / tw)) * width + tx + (i % tw)] = rgb;
        };
        this.subencodingsSeen.add(decodeTile(cursor, tw, th, put));
      }
    }
    if (cursor.pos !== raw.length) throw new Error(`ZRLE rectangle left ${raw.length - cursor.pos} bytes undecoded`);
    return out;
  }

  close(): void {
    this.inflate.close();
  }

  private async inflateChunk(data: Buffer): Promise<Buffer> {
    this.output = [];
    await new Promise<void>((resolve) => {
      this.inflate.write(data);
      this.inflate.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve());
    });
    // Output pushed during the flush may be delivered on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.failure) throw this.failure;
    return Buffer.concat(this.output);
  }
}

/** Reads CPIXELs and bytes from the inflated stream. */
class Cursor {
  pos = 0;
  private readonly cpixelLength: number;
  private readonly cpixelShift: number;

  constructor(
    private readonly buf: Buffer,
    private readonly pf: PixelFormat,
    private readonly conv: PixelConverter,
  ) {
    // RFC 6143 7.7.6: CPIXEL is 3 bytes for 32 bpp true colour of depth <= 24 whose colour bits fit
    // in the least or the most significant three bytes.
    const mask = pf.redMax * 2 ** pf.redShift + pf.greenMax * 2 ** pf.greenShift + pf.blueMax * 2 ** pf.blueShift;
    const three = pf.bitsPerPixel === 32 && pf.trueColour && pf.depth <= 24;
    if (three && mask < 2 ** 24) [this.cpixelLength, this.cpixelShift] = [3, 0];
    else if (three && mask % 256 === 0) [this.cpixelLength, this.cpixelShift] = [3, 8];
    else [this.cpixelLength, this.cpixelShift] = [pf.bitsPerPixel / 8, 0];
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new Error('ZRLE data ended inside a tile');
    return this.buf[this.pos++] ?? 0;
  }

  /** One CPIXEL as RGB888. */
  pixel(): number {
    if (this.pos + this.cpixelLength > this.buf.length) throw new Error('ZRLE data ended inside a pixel');
    let value: number;
    if (this.cpixelLength === 3) {
      const [a, b, c] = [this.buf[this.pos] ?? 0, this.buf[this.pos + 1] ?? 0, this.buf[this.pos + 2] ?? 0];
      const v = this.pf.bigEndian ? a * 65536 + b * 256 + c : c * 65536 + b * 256 + a;
      value = v * 2 ** this.cpixelShift;
    } else {
      value = this.conv.read(this.buf, this.pos);
    }
    this.pos += this.cpixelLength;
    return this.conv.unpack(value);
  }

  /** RFC 6143 7.7.6: run length is 1 + the sum of bytes, continuing while a byte is 255. */
  runLength(): number {
    let n = 1;
    let b: number;
    do {
      b = this.u8();
      n += b;
    } while (b === 255);
    return n;
  }
}

/** Decodes one tile; returns its sub-encoding. */
function decodeTile(c: Cursor, tw: number, th: number, put: (i: number, rgb: number) => void): number {
  const n = tw * th;
  const sub = c.u8();
  if (sub === 0) {
    for (let i = 0; i < n; i++) put(i, c.pixel());
  } else if (sub === 1) {
    const p = c.pixel();
    for (let i = 0; i < n; i++) put(i, p);
  } else if (sub <= 16) {
    const palette = Array.from({ length: sub }, () => c.pixel());
    const bits = sub === 2 ? 1 : sub <= 4 ? 2 : 4;
    for (let y = 0; y < th; y++) {
      // Rows start on a byte boundary; indices are packed most significant bits first.
      let byte = 0;
      let left = 0;
      for (let x = 0; x < tw; x++) {
        if (left === 0) {
          byte = c.u8();
          left = 8;
        }
        left -= bits;
        const index = (byte >> left) & ((1 << bits) - 1);
        const colour = palette[index];
        if (colour === undefined) throw new Error(`packed palette index ${index} outside a palette of ${sub}`);
        put(y * tw + x, colour);
      }
    }
  } else if (sub === 128) {
    for (let i = 0; i < n; ) {
      const p = c.pixel();
      const len = c.runLength();
      if (i + len > n) throw new Error('plain RLE run past the end of the tile');
      for (let k = 0; k < len; k++) put(i++, p);
    }
  } else if (sub >= 130) {
    const palette = Array.from({ length: sub - 128 }, () => c.pixel());
    for (let i = 0; i < n; ) {
      const b = c.u8();
      const colour = palette[b & 0x7f];
      if (colour === undefined) throw new Error(`palette RLE index ${b & 0x7f} outside a palette of ${palette.length}`);
      const len = b & 0x80 ? c.runLength() : 1;
      if (i + len > n) throw new Error('palette RLE run past the end of the tile');
      for (let k = 0; k < len; k++) put(i++, colour);
    }
  } else {
    throw new Error(`unknown ZRLE sub-encoding ${sub}`);
  }
  return sub;
}
