/**
 * RFC 6143 7.6: server-to-client messages: encoders, and decoders of their fixed-size headers
 * (a client reads the variable parts with the lengths these give, capping them first).
 */
import { encodeCutText } from './client-messages.js';
import { ServerMessageType } from './constants.js';

/** RFC 6143 7.6.1: FramebufferUpdate header is 4 bytes, each rectangle header 12. */
export const FRAMEBUFFER_UPDATE_HEADER_LENGTH = 4;
export const RECTANGLE_HEADER_LENGTH = 12;

/** A rectangle header of a FramebufferUpdate. */
export interface RectangleHeader {
  x: number;
  y: number;
  width: number;
  height: number;
  /** s32 encoding type (RFC 6143 7.7, 7.8). */
  encoding: number;
}

/** RFC 6143 7.6.1: u8 type 0, padding, u16 number-of-rectangles. */
export function encodeFramebufferUpdateHeader(rectangleCount: number): Buffer {
  const out = Buffer.alloc(FRAMEBUFFER_UPDATE_HEADER_LENGTH);
  out[0] = ServerMessageType.FramebufferUpdate;
  out.writeUInt16BE(rectangleCount, 2);
  return out;
}

/** RFC 6143 7.6.1: the number of rectangles, from the 4-byte header. */
export function decodeFramebufferUpdateHeader(buf: Buffer): number {
  return buf.readUInt16BE(2);
}

/** RFC 6143 7.6.1: u16 x, y, width, height, s32 encoding-type. */
export function encodeRectangleHeader(rect: RectangleHeader): Buffer {
  const out = Buffer.alloc(RECTANGLE_HEADER_LENGTH);
  out.writeUInt16BE(rect.x, 0);
  out.writeUInt16BE(rect.y, 2);
  out.writeUInt16BE(rect.width, 4);
  out.writeUInt16BE(rect.height, 6);
  out.writeInt32BE(rect.encoding, 8);
  return out;
}

/** Decodes a 12-byte rectangle header. */
export function decodeRectangleHeader(buf: Buffer): RectangleHeader {
  return {
    x: buf.readUInt16BE(0),
    y: buf.readUInt16BE(2),
    width: buf.readUInt16BE(4),
    height: buf.readUInt16BE(6),
    encoding: buf.readInt32BE(8),
  };
}

/** RFC 6143 7.7.2: CopyRect's body is u16 src-x-position, u16 src-y-position. */
export function encodeCopyRect(srcX: number, srcY: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt16BE(srcX, 0);
  out.writeUInt16BE(srcY, 2);
  return out;
}

/** RFC 6143 7.6.2: u8 type 1, padding, u16 first-colour, u16 number-of-colours, then u16 r, g, b each. */
export function encodeSetColourMapEntries(firstColour: number, colours: ReadonlyArray<readonly [number, number, number]>): Buffer {
  const out = Buffer.alloc(6 + 6 * colours.length);
  out[0] = ServerMessageType.SetColourMapEntries;
  out.writeUInt16BE(firstColour, 2);
  out.writeUInt16BE(colours.length, 4);
  colours.forEach(([r, g, b], i) => {
    out.writeUInt16BE(r, 6 + 6 * i);
    out.writeUInt16BE(g, 8 + 6 * i);
    out.writeUInt16BE(b, 10 + 6 * i);
  });
  return out;
}

/** The 6-byte SetColourMapEntries header: the 6-byte colours follow. */
export function decodeSetColourMapEntriesHeader(buf: Buffer): { firstColour: number; count: number } {
  return { firstColour: buf.readUInt16BE(2), count: buf.readUInt16BE(4) };
}

/** RFC 6143 7.6.3: Bell is the type byte alone. */
export function encodeBell(): Buffer {
  return Buffer.from([ServerMessageType.Bell]);
}

/** RFC 6143 7.6.4: u8 type 3, 3 padding, u32 length, Latin-1 text. */
export function encodeServerCutText(text: Buffer): Buffer {
  return encodeCutText(ServerMessageType.ServerCutText, text);
}

/** The text length from ServerCutText's 8-byte header, as s32 (negative: ExtendedClipboard). */
export function decodeServerCutTextLength(buf: Buffer): number {
  return buf.readInt32BE(4);
}
