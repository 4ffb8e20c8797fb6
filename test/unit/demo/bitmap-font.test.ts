import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefaultFont, parseBdf } from '../../../src/demo/bitmap-font.js';

const tiny = `STARTFONT 2.1
FONT -test-tiny
SIZE 8 75 75
FONTBOUNDINGBOX 4 6 0 -1
FONT_ASCENT 5
FONT_DESCENT 1
CHARS 2
STARTCHAR A
ENCODING 65
DWIDTH 4 0
BBX 3 4 0 0
BITMAP
40
A0
E0
A0
ENDCHAR
STARTCHAR g
ENCODING 103
DWIDTH 4 0
BBX 3 3 1 -1
BITMAP
E0
20
C0
ENDCHAR
ENDFONT
`;

function rows(glyph: Uint8Array, width: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < glyph.length; i += width) out.push([...glyph.subarray(i, i + width)].map((b) => (b ? '#' : '.')).join(''));
  return out;
}

test('BDF glyphs are placed on the baseline of their cell', () => {
  const font = parseBdf(tiny);
  assert.equal(font.cellWidth, 4);
  assert.equal(font.cellHeight, 6);
  assert.deepEqual(rows(font.glyph(65), 4), ['....', '.#..', '#.#.', '###.', '#.#.', '....']);
  // "g" has its bottom one row under the baseline and starts one column in.
  assert.deepEqual(rows(font.glyph(103), 4), ['....', '....', '....', '.###', '...#', '.##.']);
  assert.equal(font.has(66), false);
  assert.ok(font.glyph(66).some((b) => b === 1), 'a missing glyph draws a box');
});

test('malformed BDF is refused', () => {
  assert.throws(() => parseBdf('STARTFONT 2.1\nENDFONT\n'), /FONT_ASCENT/);
  assert.throws(() => parseBdf(tiny.replace('A0\nE0', 'A0\nzz')), /bad bitmap row/);
});

test('the default font is GalmuriMono11 with every printable ASCII glyph in 6x16 cells', () => {
  const font = loadDefaultFont();
  assert.match(font.name, /GalmuriMono11/);
  assert.equal(font.cellWidth, 6);
  assert.equal(font.cellHeight, 16);
  for (let c = 0x20; c <= 0x7e; c++) assert.ok(font.has(c), `glyph ${c}`);
  assert.ok(font.glyph(0x20).every((b) => b === 0));
  const lit = (c: string): number => font.glyph(c.charCodeAt(0)).reduce((n, b) => n + b, 0);
  assert.ok(lit('W') > lit('.'));
  assert.notDeepEqual(font.glyph(0x6c), font.glyph(0x31), '"l" and "1" differ');
});
