/**
 * RFC 6143 7.1 and 7.3: the handshake and initialisation messages, as encoders and small
 * synchronous decoders. The async steps that read them are in client-handshake.ts and
 * server-handshake.ts.
 */
import { ProtocolError } from '../errors.js';
import { PIXEL_FORMAT_LENGTH, decodePixelFormat, encodePixelFormat, type PixelFormat } from './pixel-format.js';

/** The protocol versions this codec speaks. */
export type RfbVersion = '3.3' | '3.7' | '3.8';

/** A ProtocolVersion as sent, e.g. `{major: 3, minor: 889}` for Apple Remote Desktop. */
export interface ProtocolVersionNumber {
  major: number;
  minor: number;
}

/** RFC 6143 7.1.1: "RFB xxx.yyy\n", 12 bytes. */
export const PROTOCOL_VERSION_LENGTH = 12;

/** Default cap on a failure reason read from a peer (console-security.md: reason strings 256 B). */
export const DEFAULT_MAX_REASON_LENGTH = 256;

/** Default cap on the desktop name in ServerInit (console-security.md: server name 1 KiB). */
export const DEFAULT_MAX_NAME_LENGTH = 1024;

/** RFC 6143 7.3.2: ServerInit is 24 bytes before the name. */
export const SERVER_INIT_HEADER_LENGTH = 24;

/** The ProtocolVersion message for `version`. */
export function encodeProtocolVersion(version: RfbVersion): Buffer {
  const minor = version.slice(2).padStart(3, '0');
  return Buffer.from(`RFB 003.${minor}\n`, 'latin1');
}

/** Printable excerpt of peer bytes for an error message (never the raw bytes). */
export function describeBytes(buf: Buffer, max = 16): string {
  const shown = buf.subarray(0, max);
  const printable = (b: number): boolean => b >= 0x20 && b < 0x7f && b !== 0x5c && b !== 0x22;
  const text = [...shown].map((b) => (printable(b) ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
  return `"${text}${buf.length > max ? '...' : ''}"`;
}

/** Parses a 12-byte ProtocolVersion; throws ProtocolError unless it is "RFB ddd.ddd\n". */
export function parseProtocolVersion(buf: Buffer): ProtocolVersionNumber {
  // RFC 6143 7.1.1: "RFB " + 3 digits + "." + 3 digits + "\n"
  const s = buf.toString('latin1');
  const m = buf.length === PROTOCOL_VERSION_LENGTH ? /^RFB (\d{3})\.(\d{3})\n$/.exec(s) : null;
  if (!m) throw new ProtocolError(`not an RFB ProtocolVersion: ${describeBytes(buf)}`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** "003.008" for display. */
export function formatVersionNumber(v: ProtocolVersionNumber): string {
  return `${String(v.major).padStart(3, '0')}.${String(v.minor).padStart(3, '0')}`;
}

/** The version when `v` is exactly 3.3, 3.7 or 3.8. */
export function exactRfbVersion(v: ProtocolVersionNumber): RfbVersion | undefined {
  if (v.major !== 3) return undefined;
  if (v.minor === 3) return '3.3';
  if (v.minor === 7) return '3.7';
  if (v.minor === 8) return '3.8';
  return undefined;
}

/** Orders versions: negative when a < b. */
export function compareRfbVersions(a: RfbVersion, b: RfbVersion): number {
  return Number(a.slice(2)) - Number(b.slice(2));
}

/**
 * The version a client uses against a server that announced `server`: min(server, max).
 * RFC 6143 7.1.1: other 3.x numbers (3.889 from Apple, 3.6 from UltraVNC, ...) "should be
 * interpreted as 3.3". A major version above 3 (RealVNC 4.x/5.x, Intel AMT 4.0) is newer than
 * 3.8 and accepts a 3.8 reply. Throws ProtocolError for a major version below 3.
 */
export function clientVersionFor(server: ProtocolVersionNumber, max: RfbVersion = '3.8'): RfbVersion {
  let v: RfbVersion;
  if (server.major > 3) v = '3.8';
  else if (server.major === 3) v = exactRfbVersion(server) ?? '3.3';
  else throw new ProtocolError(`unsupported RFB version ${formatVersionNumber(server)}`);
  return compareRfbVersions(v, max) > 0 ? max : v;
}

/** Encodes `text` as UTF-8, cut at `maxBytes` without splitting a character. */
export function encodeCappedUtf8(text: string, maxBytes: number): Buffer {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return buf;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) so the cut falls on a character boundary.
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/**
 * Peer text (a failure reason, a desktop name) made safe to log or show as plain text: decoded as
 * UTF-8, control characters replaced by U+FFFD. Never insert it into HTML (CVE-2017-18635).
 */
export function sanitizePeerText(buf: Buffer): string {
  // eslint-disable-next-line no-control-regex
  return buf.toString('utf8').replace(/[\u0000-\u001f\u007f-\u009f]/g, '\ufffd');
}

function withU32Length(prefix: Buffer, text: Buffer): Buffer {
  const out = Buffer.alloc(prefix.length + 4 + text.length);
  prefix.copy(out, 0);
  out.writeUInt32BE(text.length, prefix.length);
  text.copy(out, prefix.length + 4);
  return out;
}

/** RFC 6143 7.1.2 (3.7+): u8 number-of-security-types, then u8 types. */
export function encodeSecurityTypes(types: readonly number[]): Buffer {
  if (types.length < 1 || types.length > 255) throw new RangeError('between 1 and 255 security types');
  return Buffer.from([types.length, ...types]);
}

/** RFC 6143 7.1.2 (3.3): the server-chosen security type as u32. */
export function encodeSecurityType33(type: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(type, 0);
  return out;
}

/**
 * A refusal at the security step, telling the client why: 3.7/3.8 send number-of-security-types 0,
 * 3.3 sends security-type 0; both are followed by u32 reason-length and the reason
 * (RFC 6143 7.1.2). The reason is cut to `maxReasonLength` bytes.
 */
export function encodeSecurityFailure(version: RfbVersion, reason: string, maxReasonLength = DEFAULT_MAX_REASON_LENGTH): Buffer {
  const prefix = version === '3.3' ? Buffer.alloc(4) : Buffer.alloc(1);
  return withU32Length(prefix, encodeCappedUtf8(reason, maxReasonLength));
}

/** RFC 6143 7.1.3: SecurityResult u32 0 = OK, 1 = failed. */
export const SecurityResultStatus = { OK: 0, Failed: 1 } as const;

/**
 * SecurityResult. RFC 6143 7.1.3: only 3.8 follows a failure with u32 reason-length and the reason;
 * 3.3 and 3.7 send the status alone.
 */
export function encodeSecurityResult(version: RfbVersion, ok: boolean, reason = 'authentication failed', maxReasonLength = DEFAULT_MAX_REASON_LENGTH): Buffer {
  const status = Buffer.alloc(4);
  status.writeUInt32BE(ok ? SecurityResultStatus.OK : SecurityResultStatus.Failed, 0);
  if (ok || version !== '3.8') return status;
  return withU32Length(status, encodeCappedUtf8(reason, maxReasonLength));
}

/** RFC 6143 7.3.1: ClientInit is u8 shared-flag. */
export function encodeClientInit(shared: boolean): Buffer {
  return Buffer.from([shared ? 1 : 0]);
}

/** RFC 6143 7.3.2: the contents of ServerInit. */
export interface ServerInit {
  width: number;
  height: number;
  pixelFormat: PixelFormat;
  /** The desktop name, decoded as UTF-8. */
  name: string;
}

/** ServerInit; the name is cut to `maxNameLength` bytes of UTF-8. */
export function encodeServerInit(init: ServerInit, maxNameLength = DEFAULT_MAX_NAME_LENGTH): Buffer {
  // RFC 6143 7.3.2: u16 width, u16 height, PIXEL_FORMAT, u32 name-length, name
  const head = Buffer.alloc(4 + PIXEL_FORMAT_LENGTH);
  head.writeUInt16BE(init.width, 0);
  head.writeUInt16BE(init.height, 2);
  encodePixelFormat(init.pixelFormat, head, 4);
  return withU32Length(head, encodeCappedUtf8(init.name, maxNameLength));
}

/** The fixed 24-byte part of ServerInit. */
export interface ServerInitHeader {
  width: number;
  height: number;
  pixelFormat: PixelFormat;
  nameLength: number;
}

/** Decodes the 24-byte head of ServerInit (the name follows, `nameLength` bytes). */
export function decodeServerInitHeader(buf: Buffer): ServerInitHeader {
  if (buf.length < SERVER_INIT_HEADER_LENGTH) throw new RangeError('ServerInit header needs 24 bytes');
  return {
    width: buf.readUInt16BE(0),
    height: buf.readUInt16BE(2),
    pixelFormat: decodePixelFormat(buf, 4),
    nameLength: buf.readUInt32BE(20),
  };
}
