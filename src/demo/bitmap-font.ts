/**
 * A fixed-cell bitmap font read from a BDF file (Adobe Glyph Bitmap Distribution Format 2.1).
 * The demo console uses GalmuriMono11 from the `galmuri` npm package (SIL Open Font License 1.1),
 * so it runs with nothing but Node and `npm ci`: no system fonts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Glyphs laid out in equal cells, one bit a pixel. */
export interface BitmapFont {
  readonly name: string;
  readonly cellWidth: number;
  readonly cellHeight: number;
  /** The glyph of `code` as cellWidth*cellHeight 0/1 values, row-major; a fallback glyph when missing. */
  glyph(code: number): Uint8Array;
  has(code: number): boolean;
}

interface RawGlyph {
  code: number;
  dwidth: number;
  bbx: [number, number, number, number];
  rows: string[];
}

/** Printable ASCII, what the demo draws. */
export const ASCII_PRINTABLE = (code: number): boolean => code >= 0x20 && code <= 0x7e;

/**
 * Parses the glyphs of a BDF font for which `wanted(code)` holds. Stops reading once `expected`
 * glyphs were found (BDF files list glyphs in code order, ASCII first). Throws on malformed input.
 */
export function parseBdf(text: string, wanted: (code: number) => boolean = ASCII_PRINTABLE, expected = Infinity): BitmapFont {
  let name = 'unnamed';
  let ascent: number | undefined;
  let descent: number | undefined;
  const glyphs = new Map<number, RawGlyph>();
  let cur: RawGlyph | undefined;
  let inBitmap = false;
  let pos = 0;
  let lineNo = 0;
  const fail = (msg: string): never => {
    throw new Error(`BDF line ${lineNo}: ${msg}`);
  };
  while (pos < text.length && glyphs.size < expected) {
    let end = text.indexOf('\n', pos);
    if (end === -1) end = text.length;
    const line = text.slice(pos, end).trim();
    pos = end + 1;
    lineNo++;
    if (inBitmap) {
      if (line === 'ENDCHAR') {
        inBitmap = false;
        if (cur && cur.code >= 0 && wanted(cur.code)) glyphs.set(cur.code, cur);
        cur = undefined;
      } else if (cur) {
        if (!/^[0-9A-Fa-f]+$/.test(line)) fail(`bad bitmap row ${JSON.stringify(line)}`);
        cur.rows.push(line);
      }
      continue;
    }
    const [key, ...args] = line.split(/\s+/);
    const nums = args.map(Number);
    switch (key) {
      case 'FONT':
        name = args.join(' ');
        break;
      case 'FONT_ASCENT':
        ascent = nums[0];
        break;
      case 'FONT_DESCENT':
        descent = nums[0];
        break;
      case 'STARTCHAR':
        cur = { code: -1, dwidth: 0, bbx: [0, 0, 0, 0], rows: [] };
        break;
      case 'ENCODING':
        if (cur) cur.code = nums[0] ?? -1;
        break;
      case 'DWIDTH':
        if (cur) cur.dwidth = nums[0] ?? 0;
        break;
      case 'BBX':
        if (cur) {
          if (nums.length !== 4 || nums.some((n) => !Number.isInteger(n))) fail('bad BBX');
          cur.bbx = nums as [number, number, number, number];
        }
        break;
      case 'BITMAP':
        inBitmap = true;
        break;
    }
  }
  if (ascent === undefined || descent === undefined) throw new Error('BDF: FONT_ASCENT/FONT_DESCENT missing');
  if (glyphs.size === 0) throw new Error('BDF: no wanted glyphs found');
  const cellWidth = Math.max(...[...glyphs.values()].map((g) => g.dwidth));
  const cellHeight = ascent + descent;
  const cells = new Map<number, Uint8Array>();
  for (const g of glyphs.values()) cells.set(g.code, rasterize(g, cellWidth, cellHeight, ascent));
  const fallback = boxGlyph(cellWidth, cellHeight);
  return {
    name,
    cellWidth,
    cellHeight,
    glyph: (code) => cells.get(code) ?? cells.get(0x3f) ?? fallback,
    has: (code) => cells.has(code),
  };
}

/** Places a BDF glyph in its cell: the baseline is `ascent` rows from the top. */
function rasterize(g: RawGlyph, cw: number, ch: number, ascent: number): Uint8Array {
  const cell = new Uint8Array(cw * ch);
  const [w, h, xoff, yoff] = g.bbx;
  // BDF: BBX yoff is the glyph's bottom relative to the baseline (up is positive).
  const top = ascent - yoff - h;
  g.rows.slice(0, h).forEach((hex, r) => {
    const y = top + r;
    if (y < 0 || y >= ch) return;
    const bits = BigInt(`0x${hex}`);
    const width = hex.length * 4;
    for (let c = 0; c < w; c++) {
      const x = xoff + c;
      if (x < 0 || x >= cw) continue;
      if ((bits >> BigInt(width - 1 - c)) & 1n) cell[y * cw + x] = 1;
    }
  });
  return cell;
}

function boxGlyph(cw: number, ch: number): Uint8Array {
  const cell = new Uint8Array(cw * ch);
  for (let y = 2; y < ch - 2; y++) for (let x = 0; x < cw - 1; x++) if (y === 2 || y === ch - 3 || x === 0 || x === cw - 2) cell[y * cw + x] = 1;
  return cell;
}

let defaultFont: BitmapFont | undefined;

/** Path of GalmuriMono11.bdf inside the installed `galmuri` package. */
export function defaultFontPath(): string {
  return createRequire(import.meta.url).resolve('galmuri/dist/GalmuriMono11.bdf');
}

/**
 * GalmuriMono11 (6x16 cells, printable ASCII) from the `galmuri` package, loaded once.
 * Copyright (c) 2019-2025 Lee Minseo, SIL Open Font License 1.1.
 */
export function loadDefaultFont(): BitmapFont {
  defaultFont ??= parseBdf(readFileSync(defaultFontPath(), 'latin1'), ASCII_PRINTABLE, 0x7e - 0x20 + 1);
  return defaultFont;
}
