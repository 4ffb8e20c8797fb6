/** Arbitraries shared by the fuzz targets: bytes, ways to split them, hostile text. */
import fc from 'fast-check';

/** Up to `maxLength` arbitrary bytes. */
export const bytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

/** Cut points, reduced modulo the length of whatever they cut (so they shrink independently of it). */
export const cuts = (maxCount = 12): fc.Arbitrary<number[]> => fc.array(fc.nat(), { maxLength: maxCount });

/** `buf` cut at `points` (taken modulo its length + 1); never yields an empty chunk. */
export function splitAt(buf: Buffer, points: readonly number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (buf.length + 1)))].filter((p) => p > 0 && p < buf.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, buf.length]) {
    if (p > prev) out.push(Buffer.from(buf.subarray(prev, p)));
    prev = p;
  }
  return out;
}

export function u8(n: number): Buffer {
  return Buffer.from([n & 0xff]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A u32 length biased to the edges that break parsers: 0, small, around the caps, 2^31, 2^32 - 1. */
export const hostileLength = (caps: readonly number[]): fc.Arbitrary<number> =>
  fc.oneof(
    fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, ...caps.flatMap((c) => [c - 1, c, c + 1])),
    fc.integer({ min: 0, max: 64 }),
    fc.integer({ min: 0, max: 0xffffffff }),
  );

/** Strings that tend to break things: control characters, lone surrogates, markup, escapes, path tricks. */
const NASTY = [
  '', ' ', '\u0000', '\r\n', '\t', '\u001b[31m', '\u007f', '\u0085', '\u2028', '\ufeff', '\ud800', '\udfff', '\ud83d\ude00',
  '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', '%00', '%ZZ', '%', '%2F', '%252F', '..', '../', '//',
  '__proto__', 'constructor', 'null', 'NaN', '-1', '1e309', '0x10', '\\', '"', "'", '{}', '[]', '=', '&', ';', ',', '*',
];

/** Any UTF-16 text, including lone surrogates. */
export const utf16Text = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });

/** Hostile text of at most `maxLength` UTF-16 units (plus the occasional long repetition). */
export const hostileString = (maxLength = 64): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...NASTY), weight: 3 },
    { arbitrary: fc.string({ maxLength }), weight: 3 },
    { arbitrary: fc.string({ unit: 'binary', maxLength }), weight: 2 },
    { arbitrary: utf16Text(maxLength), weight: 1 },
    { arbitrary: fc.array(fc.constantFrom(...NASTY), { maxLength: 6 }).map((a) => a.join('')), weight: 2 },
    { arbitrary: fc.tuple(fc.constantFrom('a', '%', '\u00e9', '/', '=', '&', ','), fc.integer({ min: 100, max: 5000 })).map(([c, n]) => c.repeat(n)), weight: 1 },
  );

/** Characters outside [0x21, 0xff] percent-encoded (what an HTTP client can put on a request line). */
export function requestTargetSafe(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const lone = ch.length === 1 && c >= 0xd800 && c <= 0xdfff;
    out += c >= 0x21 && c <= 0xff ? ch : encodeURIComponent(lone ? '\ufffd' : ch);
  }
  return out;
}

/** Characters an HTTP client may put in a header value (tab, 0x20-0x7e, 0x80-0xff). */
export function headerValueSafe(s: string): string {
  return [...s].map((ch) => {
    const c = ch.codePointAt(0)!;
    return c === 9 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff) ? ch : '?';
  }).join('');
}

/** Control characters as the log and terminal see them: what peer text must never carry into a message. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
