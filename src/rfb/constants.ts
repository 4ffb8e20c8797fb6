/**
 * RFB protocol numbers, with the names RFC 6143 gives them.
 * Numbers the RFC only registers (section 8 and the IANA registry) are listed so that logs and
 * errors can name them; this codec implements only what the rest of `src/rfb/` says it does.
 */

/** RFC 6143 7.1.2 and 8.1.2: security types. */
export const SecurityType = {
  Invalid: 0,
  None: 1,
  VncAuthentication: 2,
  RA2: 5,
  RA2ne: 6,
  Tight: 16,
  Ultra: 17,
  TLS: 18,
  VeNCrypt: 19,
  GtkVncSasl: 20,
  Md5HashAuthentication: 21,
  ColinDeanXvp: 22,
  AppleRemoteDesktop: 30,
  MSLogonII: 113,
} as const;

const SECURITY_TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(SecurityType).map(([k, v]) => [v, k]));

/** "VncAuthentication(2)", or "unknown(42)" for a number we have no name for. */
export function securityTypeName(type: number): string {
  return `${SECURITY_TYPE_NAMES.get(type) ?? 'unknown'}(${type})`;
}

/** RFC 6143 7.5: client-to-server message types (0-6), plus the registered extensions noVNC sends. */
export const ClientMessageType = {
  SetPixelFormat: 0,
  SetEncodings: 2,
  FramebufferUpdateRequest: 3,
  KeyEvent: 4,
  PointerEvent: 5,
  ClientCutText: 6,
  /** Registered extension: sent only after the server announced ContinuousUpdates. */
  EnableContinuousUpdates: 150,
  /** Registered extension: sent only after the server sent a Fence. */
  ClientFence: 248,
  /** Registered extension: sent only after the server announced xvp. */
  Xvp: 250,
  /** Registered extension: sent only after the server announced ExtendedDesktopSize. */
  SetDesktopSize: 251,
  /** Registered extension: QEMU client messages (ExtendedKeyEvent, audio). */
  QemuClientMessage: 255,
} as const;

/** RFC 6143 7.6: server-to-client message types. */
export const ServerMessageType = {
  FramebufferUpdate: 0,
  SetColourMapEntries: 1,
  Bell: 2,
  ServerCutText: 3,
} as const;

/** RFC 6143 7.7 and 7.8: encodings (rectangle encodings and pseudo-encodings), as signed 32-bit numbers. */
export const Encoding = {
  Raw: 0,
  CopyRect: 1,
  RRE: 2,
  CoRRE: 4,
  Hextile: 5,
  Zlib: 6,
  Tight: 7,
  ZlibHex: 8,
  TRLE: 15,
  ZRLE: 16,
  JPEG: 21,
  TightPNG: -260,
  /** Pseudo-encodings. */
  DesktopSize: -223,
  LastRect: -224,
  Cursor: -239,
  XCursor: -240,
  QemuPointerMotionChange: -257,
  QemuExtendedKeyEvent: -258,
  QemuAudio: -259,
  QemuLedState: -261,
  DesktopName: -307,
  ExtendedDesktopSize: -308,
  Xvp: -309,
  Fence: -312,
  ContinuousUpdates: -313,
  ExtendedMouseButtons: -316,
  /** Tight's CompressLevel pseudo-encodings span -256..-247, JPEG quality -32..-23. */
  CompressLevel0: -256,
  CompressLevel9: -247,
  QualityLevel0: -32,
  QualityLevel9: -23,
  ExtendedClipboard: -1063131698, // 0xc0a1e5ce as s32
} as const;

const ENCODING_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Encoding).map(([k, v]) => [v, k]));

/** "ZRLE(16)", or "unknown(123)". */
export function encodingName(encoding: number): string {
  return `${ENCODING_NAMES.get(encoding) ?? 'unknown'}(${encoding})`;
}

/** RFC 6143 7.5.4: X11 keysyms the demo console and tests use. */
export const Keysym = {
  BackSpace: 0xff08,
  Tab: 0xff09,
  Return: 0xff0d,
  Escape: 0xff1b,
  Delete: 0xffff,
  KP_Enter: 0xff8d,
} as const;
