/**
 * Byte scripts for RFB peers: what a hostile (or merely odd) browser or VNC server may send. Each
 * generator mixes well-formed pieces with broken ones, so that runs get past the first check.
 */
import fc from 'fast-check';
import { encodeClientCutText, encodeFramebufferUpdateRequest, encodeKeyEvent, encodePointerEvent, encodeSetEncodings, encodeSetPixelFormat } from '../../src/rfb/client-messages.js';
import { encodeProtocolVersion, encodeServerInit, type RfbVersion } from '../../src/rfb/handshake-messages.js';
import { encodePixelFormat, RGB888_PIXEL_FORMAT } from '../../src/rfb/pixel-format.js';
import { bytes, hostileLength, u16, u32, u8 } from './generators.js';

/** Text a backend sends that must never reach a browser during the handshake (reasons, names). */
export const BACKEND_MARKER = 'BACKEND-TEXT';

const version = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('RFB 003.008\n', 'RFB 003.007\n', 'RFB 003.003\n').map((s) => Buffer.from(s, 'latin1')) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'RFB 003.889\n', 'RFB 003.006\n', 'RFB 004.001\n', 'RFB 005.000\n', 'RFB 000.000\n', 'RFB 002.999\n', 'RFB 999.999\n',
      'RFB 003.008', 'RFB 3.8\n\n\n\n\n', 'rfb 003.008\n', 'RFB 003.008\r', 'RFB 00a.008\n', 'RFB 003,008\n', 'HTTP/1.1 200', '\u0000'.repeat(12),
    ).map((s) => Buffer.from(s, 'latin1')),
  },
  { weight: 1, arbitrary: bytes(12) },
);

/** Text with control bytes, markup and the marker: a hostile reason or desktop name. */
const peerText = fc.oneof(
  fc.constantFrom(`<script>alert("${BACKEND_MARKER}")</script>`, `${BACKEND_MARKER}\u0000\u001b[2J\r\n`, `${BACKEND_MARKER} \u202e<img src=x>`, BACKEND_MARKER),
  fc.tuple(bytes(40), bytes(40)).map(([a, b]) => Buffer.concat([a, Buffer.from(BACKEND_MARKER), b]).toString('latin1')),
).map((s) => Buffer.from(s, 'latin1'));

/** u32 length + text; the length may lie (too long, huge, or shorter than the text). */
const lengthPrefixed = (cap: number): fc.Arbitrary<Buffer> =>
  fc.tuple(fc.option(hostileLength([cap]), { nil: undefined }), peerText).map(([len, text]) => Buffer.concat([u32(len ?? text.length), text]));

const securityTypes = fc.array(fc.constantFrom(0, 1, 2, 5, 16, 18, 19, 30, 113, 255), { minLength: 0, maxLength: 6 });

/** RFC 6143 7.1.2: 3.7+ list (or a refusal with a reason), or 3.3's u32 choice (or 0 and a reason). */
const serverSecurity = fc.oneof(
  { weight: 4, arbitrary: securityTypes.map((t) => Buffer.from([t.length, ...t])) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1, 2, 255), securityTypes).map(([n, t]) => Buffer.from([n, ...t])) },
  { weight: 2, arbitrary: lengthPrefixed(256).map((r) => Buffer.concat([u8(0), r])) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 2, 16, 0xffffffff).chain((t) => (t === 0 ? lengthPrefixed(256).map((r) => Buffer.concat([u32(0), r])) : fc.constant(u32(t)))) },
);

/** RFC 6143 7.1.3: OK, or failed with (3.8) a reason. */
const securityResult = fc.oneof(
  { weight: 4, arbitrary: fc.constant(u32(0)) },
  { weight: 2, arbitrary: lengthPrefixed(256).map((r) => Buffer.concat([u32(1), r])) },
  { weight: 1, arbitrary: fc.constantFrom(1, 2, 0xffffffff).map(u32) },
);

const pixelFormat = fc.oneof(
  { weight: 3, arbitrary: fc.constant(encodePixelFormat(RGB888_PIXEL_FORMAT)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)) },
  {
    weight: 1,
    arbitrary: fc.record({
      bitsPerPixel: fc.constantFrom(8, 16, 32, 24, 0), depth: fc.constantFrom(8, 16, 24, 32, 0, 33), bigEndian: fc.boolean(), trueColour: fc.boolean(),
      redMax: fc.constantFrom(255, 31, 63, 0, 256), greenMax: fc.constantFrom(255, 63, 0), blueMax: fc.constantFrom(255, 31, 0),
      redShift: fc.constantFrom(16, 11, 0, 31, 255), greenShift: fc.constantFrom(8, 5, 0), blueShift: fc.constantFrom(0, 3),
    }).map((pf) => encodePixelFormat(pf)),
  },
);

/** RFC 6143 7.3.2: width, height, PIXEL_FORMAT, name length (may lie), name. */
const serverInit = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), pixelFormat, lengthPrefixed(1024))
  .map(([w, h, pf, name]) => Buffer.concat([u16(w), u16(h), pf, name]));

/** A complete, valid server handshake for one version and security type, then trailing messages. */
const validServerParts = fc.record({
  version: fc.constantFrom<RfbVersion>('3.3', '3.7', '3.8'),
  type: fc.constantFrom(1, 2),
  extraTypes: fc.array(fc.constantFrom(2, 5, 16, 18, 19), { maxLength: 3 }),
  width: fc.integer({ min: 1, max: 4096 }),
  height: fc.integer({ min: 1, max: 4096 }),
  name: peerText,
  trailing: bytes(64),
}).map((p): Buffer[] => {
  // Type 1 (None) among the offers means the client picks it: VNC auth is offered alone.
  const types = p.type === 1 ? [...p.extraTypes, 1] : [...p.extraTypes, 2];
  return [
    encodeProtocolVersion(p.version),
    p.version === '3.3' ? u32(p.type) : Buffer.from([types.length, ...types]),
    p.type === 2 ? Buffer.alloc(16, 7) : Buffer.alloc(0),
    p.version === '3.8' || p.type === 2 ? u32(0) : Buffer.alloc(0),
    encodeServerInit({ width: p.width, height: p.height, pixelFormat: RGB888_PIXEL_FORMAT, name: p.name.toString('latin1') }),
    p.trailing,
  ];
});

/** Replacements for each of the six parts above, in order. */
const serverPartMutations: ReadonlyArray<fc.Arbitrary<Buffer>> = [version, serverSecurity, bytes(16), securityResult, serverInit, bytes(300)];

/**
 * What a VNC server sends during the handshake: a valid handshake with none, one or two of its
 * parts replaced by something hostile or dropped, or just bytes.
 */
export const serverScript: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 1, arbitrary: bytes(300) },
  {
    weight: 6,
    arbitrary: fc.tuple(validServerParts, fc.array(fc.tuple(fc.nat(5), fc.boolean()), { maxLength: 2 })).chain(([parts, edits]) =>
      fc.tuple(...edits.map(([i, drop]) => (drop ? fc.constant(Buffer.alloc(0)) : serverPartMutations[i]!))).map((replacements) => {
        const out = [...parts];
        edits.forEach(([i], k) => (out[i] = replacements[k]!));
        return Buffer.concat(out);
      })),
  },
);

// ---- browser side

const securityChoice = fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2, 16, 255) }).map(u8);

/**
 * Client messages: well formed (what noVNC sends) or broken (bad types, lying lengths, invalid
 * pixel formats, extension messages with odd sub-types).
 */
export const validClientMessage: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(encodeSetPixelFormat(RGB888_PIXEL_FORMAT)),
  fc.array(fc.integer({ min: -0x80000000, max: 0x7fffffff }), { maxLength: 30 }).map(encodeSetEncodings),
  fc.tuple(fc.boolean(), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff)).map(([i, x, y, w, h]) => encodeFramebufferUpdateRequest(i, x, y, w, h)),
  fc.tuple(fc.nat(), fc.boolean()).map(([k, d]) => encodeKeyEvent(k, d)),
  fc.tuple(fc.nat(0x7f), fc.nat(0xffff), fc.nat(0xffff)).map(([m, x, y]) => encodePointerEvent(m, x, y)),
  bytes(200).map(encodeClientCutText),
);

/** ClientCutText in the ExtendedClipboard form: u8 6, 3 padding, s32 -(4 + payload), u32 flags, payload. */
function extendedCutText(flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head[0] = 6;
  head.writeInt32BE(-(4 + payload.length), 4);
  head.writeUInt32BE(flags >>> 0, 8);
  return Buffer.concat([head, payload]);
}

/**
 * Extended clipboard messages (rfbproto ExtendedClipboard): what noVNC sends once a server
 * announced the extension (caps reply, notify, request, peek, provide), and malformed ones
 * (arbitrary flags, lengths too short for the flags, 0xFFFFFFFF).
 */
export const extendedClipboardMessage: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<[number, string]>([0x1f000001, '00000000'], [0x08000001, ''], [0x08000000, ''], [0x02000001, ''], [0x04000000, '']).map(([f, p]) => extendedCutText(f, Buffer.from(p, 'hex'))) },
  { weight: 1, arbitrary: bytes(40).map((b) => extendedCutText(0x10000001, Buffer.concat([Buffer.from('789c', 'hex'), b]))) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), bytes(12)).map(([f, p]) => extendedCutText(f, p)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }).map((n) => Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(-n), Buffer.alloc(n, 0x41)])) },
);

const brokenClientMessage: fc.Arbitrary<Buffer> = fc.oneof(
  bytes(16),
  fc.integer({ min: 0, max: 255 }).map((t) => Buffer.from([t, 0, 0, 0])),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((pf) => Buffer.concat([Buffer.from([0, 0, 0, 0]), pf])),
  fc.tuple(fc.constantFrom(0, 1, 1024, 1025, 0xffff), bytes(64)).map(([n, rest]) => Buffer.concat([Buffer.from([2, 0]), u16(n), rest])),
  fc.tuple(hostileLength([1024 * 1024, 4096]), bytes(64)).map(([n, rest]) => Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(n), rest])),
  fc.tuple(fc.constantFrom(0, 64, 65, 255), bytes(80)).map(([n, rest]) => Buffer.concat([Buffer.from([248, 0, 0, 0]), u32(0), u8(n), rest])),
  fc.tuple(fc.constantFrom(0, 1, 255), bytes(40)).map(([n, rest]) => Buffer.concat([Buffer.from([251, 0]), u16(640), u16(480), u8(n), u8(0), rest])),
  fc.tuple(fc.constantFrom(0, 1, 2, 7), fc.constantFrom(0, 1, 2, 3, 0xffff), bytes(12)).map(([sub, op, rest]) => Buffer.concat([Buffer.from([255, sub]), u16(op), rest])),
  fc.tuple(fc.constantFrom(150, 250), bytes(10)).map(([t, rest]) => Buffer.concat([u8(t), rest])),
  extendedClipboardMessage,
);

export const clientMessage: fc.Arbitrary<Buffer> = fc.oneof({ weight: 3, arbitrary: validClientMessage }, { weight: 2, arbitrary: brokenClientMessage });

/** A stream of client messages, mostly well formed. */
export const clientMessageStream = (maxMessages: number): fc.Arbitrary<Buffer> =>
  fc.array(clientMessage, { maxLength: maxMessages }).map((m) => Buffer.concat(m));

/** The VNC Authentication response the fuzzed servers accept (they are given a verifier, not a password). */
export const ACCEPTED_VNC_RESPONSE = Buffer.alloc(16, 0x5a);

const vncResponse = fc.oneof(fc.constant(ACCEPTED_VNC_RESPONSE), fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)), bytes(15));

/** What a browser sends during the handshake: version, security type, ClientInit (each may be wrong or missing). */
export const clientHandshakeScript: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 1, arbitrary: bytes(40) },
  {
    weight: 5,
    arbitrary: fc.tuple(version, fc.option(securityChoice, { nil: undefined }), fc.option(vncResponse, { nil: undefined }), fc.option(fc.constantFrom(0, 1, 255).map(u8), { nil: undefined }))
      .map((parts) => Buffer.concat(parts.filter((p): p is Buffer => p !== undefined))),
  },
);
