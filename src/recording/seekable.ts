/**
 * A recording made seekable for the player: the server's stream re-encoded so that a fresh noVNC
 * can start at a keyframe, and keyframes (the whole screen) every so often.
 *
 * Why re-encode: ZRLE keeps one zlib stream for the whole connection (RFC 6143 7.7.6), and real
 * servers (QEMU, TigerVNC) compress each rectangle with references to earlier ones: a decoder
 * cannot start in the middle. Here each ZRLE rectangle is inflated (one stream, in order) and
 * deflated again on its own (ending in a sync flush, with no reference to earlier rectangles: a
 * valid part of one zlib stream, as our ZrleEncoder writes), so any decoder that has read a zlib
 * header reads on from any rectangle. A keyframe is a FramebufferUpdate painting the whole screen
 * as it was at that point (decoded here with the screenshot decoder): ZRLE from a fresh encoder
 * (its zlib header starts the new player's stream) once the stream has had ZRLE, Raw before.
 *
 * Output: records in the file's format (recording-file.ts): the ServerInit, the server's messages
 * (one ServerBytes record each, re-encoded, at the time of the record that completed them), the
 * browser's records as they were, and Keyframe records after the message they show the screen of.
 *
 * Recordings in encodings this cannot follow (Tight, Zlib, RRE, ...: the proxy does not offer them
 * to the servers of recorded sessions) are not made seekable: `null`, and the player replays them
 * from the start.
 */
import { ByteReader, Encoding, PixelConverter, RGB888_PIXEL_FORMAT, ZrleEncoder, decodeServerInitHeader, zrleRectangleData, encodeFramebufferUpdateHeader, encodeRectangleHeader } from '../rfb/index.js';
import { FramebufferDecoder, ZlibStream } from '../screenshot/framebuffer-decoder.js';
import { RECORD_HEADER, RecordType, type ParsedRecord } from './recording-file.js';

/** A record type only the seekable form has: a FramebufferUpdate painting the whole screen. */
export const KEYFRAME_RECORD = 6;

/** A keyframe once this much was painted since the last one (in screens), or this many updates. */
const KEYFRAME_SCREENS = 2;
const KEYFRAME_UPDATES = 100;
/** ...and not closer together than this (recording time). */
const KEYFRAME_MIN_MS = 5_000;

/** The encodings a recorded session may use (the proxy offers the server no others). */
export const SEEKABLE_ENCODINGS: ReadonlySet<number> = new Set([
  Encoding.Raw, Encoding.CopyRect, Encoding.Hextile, Encoding.ZRLE,
]);

/** Pseudo-encodings noVNC asks for: rectangles with no pixels (their lengths are known). */
const PSEUDO = {
  DesktopSize: -223, LastRect: -224, Cursor: -239, QemuExtendedKeyEvent: -258, QemuLed: -261, DesktopName: -307,
  ExtendedDesktopSize: -308, ExtendedMouseButtons: -316, VmwareCursor: 0x574d5664, VmwareLed: 0x574d5304,
} as const;

/** Whether the proxy may offer `encoding` to the server of a recorded session (pixel encodings we follow, and any pseudo-encoding we can frame or that brings no rectangle). */
export function recordableEncoding(encoding: number): boolean {
  if (SEEKABLE_ENCODINGS.has(encoding)) return true;
  // TightPNG has a pseudo-encoding's number and is a real encoding.
  if (encoding === Encoding.TightPNG) return false;
  // Other real encodings (Tight, TightPNG, Zlib, ZlibHex, RRE, CoRRE, TRLE, JPEG, H.264...) are not.
  return encoding < 0 || encoding > 0x1000;
}

/** The stream holds what this module does not follow. */
class NotSeekable extends Error {}

/** Reads the server's bytes (all of them, concatenated); a RangeError past their end (a message cut short). */
class Cursor {
  p = 0;
  constructor(readonly b: Buffer) {}
  need(n: number): void {
    if (this.p + n > this.b.length) throw new RangeError('incomplete');
  }
  u8(): number {
    this.need(1);
    return this.b[this.p++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.p);
    this.p += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  s32(): number {
    this.need(4);
    const v = this.b.readInt32BE(this.p);
    this.p += 4;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.p += n;
  }
  take(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
}

const BPP = 4;

/** Bytes of a Hextile rectangle (RFC 6143 7.7.4), 4-byte pixels. */
function skipHextile(c: Cursor, w: number, h: number): void {
  for (let ty = 0; ty < h; ty += 16) {
    const th = Math.min(16, h - ty);
    for (let tx = 0; tx < w; tx += 16) {
      const tw = Math.min(16, w - tx);
      const sub = c.u8();
      if (sub & 1) {
        c.skip(tw * th * BPP);
        continue;
      }
      if (sub & 2) c.skip(BPP);
      if (sub & 4) c.skip(BPP);
      if (sub & 8) {
        const n = c.u8();
        c.skip(n * ((sub & 16 ? BPP : 0) + 2));
      }
    }
  }
}

interface Message {
  /** Index of the record that completed it. */
  readonly record: number;
  readonly bytes: Buffer;
  /** A keyframe to follow it. */
  keyframe?: Buffer;
}

/**
 * The seekable form of a recording's records, or null when its stream cannot be followed (the
 * original plays, from the start).
 */
export async function seekableRecords(records: readonly ParsedRecord[]): Promise<{ records: Buffer; keyframes: number } | null> {
  const initRecord = records.find((r) => r.type === RecordType.ServerInit);
  if (!initRecord) return null;
  let width: number;
  let height: number;
  try {
    ({ width, height } = decodeServerInitHeader(initRecord.payload));
    if (width < 1 || height < 1) return null;
  } catch {
    return null;
  }
  const initial = { width, height };
  // The server's bytes, and where each record's end is in them.
  const serverParts: Buffer[] = [];
  const ends: Array<{ end: number; record: number }> = [];
  let total = 0;
  records.forEach((r, i) => {
    if (r.type !== RecordType.ServerBytes) return;
    serverParts.push(r.payload);
    total += r.payload.length;
    ends.push({ end: total, record: i });
  });
  const c = new Cursor(Buffer.concat(serverParts, total));
  const inflater = new ZlibStream();
  const reader = new ByteReader({ maxReadLength: 64 * 1024 * 1024 });
  const decoder = new FramebufferDecoder(reader, width, height);
  const conv = new PixelConverter(RGB888_PIXEL_FORMAT);
  const messages: Message[] = [];
  let endIndex = 0;
  let zrleStarted = false;
  let paintedSince = 0;
  let updatesSince = 0;
  let lastKeyframeT = -Infinity;
  const recordOf = (offset: number): number => {
    while (endIndex < ends.length && ends[endIndex]!.end < offset) endIndex++;
    return ends[Math.min(endIndex, ends.length - 1)]!.record;
  };
  try {
    while (c.p < c.b.length) {
      const start = c.p;
      let out: Buffer;
      try {
        const type = c.u8();
        if (type === 0) {
          c.skip(1);
          const count = c.u16();
          const parts: Buffer[] = [];
          /** The same update for the decoder: pixel rectangles and size changes only. */
          const forDecoder: Buffer[] = [];
          let rects = 0;
          let decoderRects = 0;
          for (let i = 0; i < count; i++) {
            const head = c.take(12);
            const w = head.readUInt16BE(4);
            const h = head.readUInt16BE(6);
            const enc = head.readInt32BE(8);
            const rectStart = c.p;
            rects++;
            if (enc === PSEUDO.LastRect) {
              parts.push(head);
              break;
            }
            switch (enc) {
              case Encoding.Raw:
                c.skip(w * h * BPP);
                break;
              case Encoding.CopyRect:
                c.skip(4);
                break;
              case Encoding.Hextile:
                skipHextile(c, w, h);
                break;
              case Encoding.ZRLE: {
                const data = c.take(c.u32());
                // At most raw CPIXELs and a byte per tile (the decoder's own bound).
                const tiles = await inflater.take(data, w * h * 3 + Math.ceil(w / 64) * Math.ceil(h / 64));
                const body = zrleRectangleData(tiles, !zrleStarted);
                zrleStarted = true;
                parts.push(head, body);
                forDecoder.push(head, body);
                decoderRects++;
                paintedSince += (w * h) / (width * height);
                continue;
              }
              case PSEUDO.DesktopSize:
                width = w;
                height = h;
                break;
              case PSEUDO.ExtendedDesktopSize: {
                const n = c.u8();
                c.skip(3 + n * 16);
                // A refusal of the client's request (y != 0) changes nothing.
                if (head.readUInt16BE(2) === 0) {
                  width = w;
                  height = h;
                  forDecoder.push(encodeRectangleHeader({ x: 0, y: 0, width: w, height: h, encoding: PSEUDO.DesktopSize }));
                  decoderRects++;
                }
                parts.push(c.b.subarray(rectStart - 12, c.p));
                continue;
              }
              case PSEUDO.Cursor:
                c.skip(w * h * BPP + ((w + 7) >> 3) * h);
                break;
              case PSEUDO.VmwareCursor: {
                const kind = c.u8();
                c.skip(1 + (kind === 0 ? 2 * w * h * BPP : w * h * 4));
                break;
              }
              case PSEUDO.DesktopName:
                c.skip(c.u32());
                break;
              case PSEUDO.QemuLed:
                c.skip(1);
                break;
              case PSEUDO.VmwareLed:
                c.skip(4);
                break;
              case PSEUDO.QemuExtendedKeyEvent:
              case PSEUDO.ExtendedMouseButtons:
                break;
              default:
                throw new NotSeekable(`rectangle encoding ${enc}`);
            }
            const rect = c.b.subarray(rectStart - 12, c.p);
            parts.push(rect);
            if (enc === Encoding.Raw || enc === Encoding.CopyRect || enc === Encoding.Hextile || enc === PSEUDO.DesktopSize) {
              forDecoder.push(rect);
              decoderRects++;
              if (enc !== PSEUDO.DesktopSize) paintedSince += (w * h) / (width * height);
            }
          }
          const fbu = encodeFramebufferUpdateHeader(rects);
          out = Buffer.concat([fbu, ...parts]);
          reader.push(Buffer.concat([encodeFramebufferUpdateHeader(decoderRects), ...forDecoder]));
          await decoder.nextUpdate();
          updatesSince++;
        } else if (type === 1) {
          c.skip(3);
          c.skip(c.u16() * 6);
          out = c.b.subarray(start, c.p);
        } else if (type === 2 || type === 150) {
          out = c.b.subarray(start, c.p);
        } else if (type === 3) {
          c.skip(3);
          c.skip(Math.abs(c.s32()));
          out = c.b.subarray(start, c.p);
        } else if (type === 248) {
          c.skip(3 + 4);
          c.skip(c.u8());
          out = c.b.subarray(start, c.p);
        } else if (type === 250) {
          c.skip(3);
          out = c.b.subarray(start, c.p);
        } else if (type === 255) {
          const sub = c.u8();
          const op = c.u16();
          if (sub !== 1) throw new NotSeekable(`QEMU server message ${sub}`);
          if (op === 2) c.skip(c.u32());
          out = c.b.subarray(start, c.p);
        } else {
          throw new NotSeekable(`server message ${type}`);
        }
      } catch (e) {
        // The stream ends in the middle of a message (the recording stopped there): the rest is dropped.
        if (e instanceof RangeError) break;
        throw e;
      }
      const m: Message = { record: recordOf(c.p), bytes: out };
      messages.push(m);
      const t = records[m.record]!.t;
      if (out[0] === 0 && (paintedSince >= KEYFRAME_SCREENS || updatesSince >= KEYFRAME_UPDATES) && t - lastKeyframeT >= KEYFRAME_MIN_MS) {
        m.keyframe = keyframe(decoder, zrleStarted, conv, decoder.width !== initial.width || decoder.height !== initial.height);
        lastKeyframeT = t;
        paintedSince = 0;
        updatesSince = 0;
      }
    }
  } catch {
    // An encoding or message we do not follow (NotSeekable), or a stream the decoder refuses
    // (ProtocolError): the original plays, from the start.
    return null;
  } finally {
    inflater.close();
    decoder.close();
  }
  // The records again: the server's messages in place of its bytes, keyframes after theirs.
  const out: Buffer[] = [];
  const push = (type: number, t: number, payload: Buffer): void => {
    const h = Buffer.allocUnsafe(RECORD_HEADER);
    h[0] = type;
    h.writeUInt32BE(t >>> 0, 1);
    h.writeUInt32BE(payload.length, 5);
    out.push(h, payload);
  };
  let mi = 0;
  let keyframes = 0;
  records.forEach((r, i) => {
    if (r.type !== RecordType.ServerBytes) push(r.type, r.t, r.payload);
    while (mi < messages.length && messages[mi]!.record === i) {
      const m = messages[mi++]!;
      push(RecordType.ServerBytes, r.t, m.bytes);
      if (m.keyframe) {
        push(KEYFRAME_RECORD, r.t, m.keyframe);
        keyframes++;
      }
    }
  });
  return { records: Buffer.concat(out), keyframes };
}

/** A FramebufferUpdate painting the decoder's whole screen (and its size when it changed). */
function keyframe(d: FramebufferDecoder, zrle: boolean, conv: PixelConverter, resized: boolean): Buffer {
  const parts: Buffer[] = [];
  if (resized) parts.push(encodeRectangleHeader({ x: 0, y: 0, width: d.width, height: d.height, encoding: PSEUDO.DesktopSize }));
  parts.push(encodeRectangleHeader({ x: 0, y: 0, width: d.width, height: d.height, encoding: zrle ? Encoding.ZRLE : Encoding.Raw }));
  if (zrle) {
    // A fresh encoder: its zlib header starts the new player's stream.
    parts.push(new ZrleEncoder().encode(d.pixels, d.width, 0, 0, d.width, d.height, conv));
  } else {
    const raw = Buffer.allocUnsafe(d.width * d.height * 4);
    for (let i = 0; i < d.pixels.length; i++) raw.writeUInt32LE(d.pixels[i]!, i * 4);
    parts.push(raw);
  }
  return Buffer.concat([encodeFramebufferUpdateHeader(resized ? 2 : 1), ...parts]);
}
