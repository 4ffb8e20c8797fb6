/**
 * RFC 6143 7.5: client-to-server messages, as decoded values and as encoders. The decoder is the
 * {@link ClientMessageFramer} in client-message-framer.ts.
 */
import { ClientMessageType } from './constants.js';
import { PIXEL_FORMAT_LENGTH, encodePixelFormat, type PixelFormat } from './pixel-format.js';

/** Fields every decoded client message has. */
interface Framed {
  /** The message's bytes as received (a view when it arrived in one chunk): for relaying. */
  raw: Buffer;
}

/** RFC 6143 7.5.1. */
export interface SetPixelFormatMessage extends Framed {
  type: 'SetPixelFormat';
  pixelFormat: PixelFormat;
}
/** RFC 6143 7.5.2: encodings in the client's order of preference. */
export interface SetEncodingsMessage extends Framed {
  type: 'SetEncodings';
  encodings: number[];
}
/** RFC 6143 7.5.3. */
export interface FramebufferUpdateRequestMessage extends Framed {
  type: 'FramebufferUpdateRequest';
  incremental: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
}
/** RFC 6143 7.5.4: `key` is an X11 keysym. */
export interface KeyEventMessage extends Framed {
  type: 'KeyEvent';
  down: boolean;
  key: number;
}
/** RFC 6143 7.5.5 (with the ExtendedMouseButtons extension, `buttonMask` may use bits 7-8). */
export interface PointerEventMessage extends Framed {
  type: 'PointerEvent';
  buttonMask: number;
  x: number;
  y: number;
}
/** RFC 6143 7.5.6: Latin-1 text; `extended` when the length was negative (ExtendedClipboard). */
export interface ClientCutTextMessage extends Framed {
  type: 'ClientCutText';
  extended: boolean;
  text: Buffer;
}
/** Registered extension 150 (ContinuousUpdates). */
export interface EnableContinuousUpdatesMessage extends Framed {
  type: 'EnableContinuousUpdates';
  enable: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
}
/** Registered extension 248 (Fence): payload at most 64 bytes. */
export interface ClientFenceMessage extends Framed {
  type: 'ClientFence';
  flags: number;
  payload: Buffer;
}
/** Registered extension 250 (xvp). */
export interface XvpMessage extends Framed {
  type: 'Xvp';
  version: number;
  operation: number;
}
/** Registered extension 251 (ExtendedDesktopSize). */
export interface SetDesktopSizeMessage extends Framed {
  type: 'SetDesktopSize';
  width: number;
  height: number;
  screenCount: number;
}
/** Registered extension 255, submessage 0: QEMU ExtendedKeyEvent (keysym plus XT scancode). */
export interface QemuExtendedKeyEventMessage extends Framed {
  type: 'QemuExtendedKeyEvent';
  down: boolean;
  key: number;
  keycode: number;
}
/** Registered extension 255, submessage 1: QEMU audio control. */
export interface QemuAudioMessage extends Framed {
  type: 'QemuAudio';
  operation: number;
}

/** Any client-to-server message the framer accepts. */
export type ClientMessage =
  | SetPixelFormatMessage
  | SetEncodingsMessage
  | FramebufferUpdateRequestMessage
  | KeyEventMessage
  | PointerEventMessage
  | ClientCutTextMessage
  | EnableContinuousUpdatesMessage
  | ClientFenceMessage
  | XvpMessage
  | SetDesktopSizeMessage
  | QemuExtendedKeyEventMessage
  | QemuAudioMessage;

/** Messages a person caused (keys, pointer, clipboard): what resets an idle timer. */
export function isUserInput(msg: ClientMessage): boolean {
  return msg.type === 'KeyEvent' || msg.type === 'PointerEvent' || msg.type === 'QemuExtendedKeyEvent' || msg.type === 'ClientCutText';
}

/** {@link isUserInput} of the message framed at `buf[off]` (read from its type byte, and QEMU's submessage), without decoding it. */
export function isUserInputAt(buf: Buffer, off: number): boolean {
  const type = buf[off];
  return type === ClientMessageType.KeyEvent || type === ClientMessageType.PointerEvent || type === ClientMessageType.ClientCutText ||
    (type === ClientMessageType.QemuClientMessage && buf[off + 1] === 0);
}

/** RFC 6143 7.5.1: u8 type, 3 padding, PIXEL_FORMAT. */
export function encodeSetPixelFormat(pf: PixelFormat): Buffer {
  const out = Buffer.alloc(4 + PIXEL_FORMAT_LENGTH);
  out[0] = ClientMessageType.SetPixelFormat;
  encodePixelFormat(pf, out, 4);
  return out;
}

/** RFC 6143 7.5.2: u8 type, padding, u16 count, s32 encodings. */
export function encodeSetEncodings(encodings: readonly number[]): Buffer {
  const out = Buffer.alloc(4 + 4 * encodings.length);
  out[0] = ClientMessageType.SetEncodings;
  out.writeUInt16BE(encodings.length, 2);
  encodings.forEach((e, i) => out.writeInt32BE(e, 4 + 4 * i));
  return out;
}

/** RFC 6143 7.5.3: u8 type, u8 incremental, u16 x, y, width, height. */
export function encodeFramebufferUpdateRequest(incremental: boolean, x: number, y: number, width: number, height: number): Buffer {
  const out = Buffer.alloc(10);
  out[0] = ClientMessageType.FramebufferUpdateRequest;
  out[1] = incremental ? 1 : 0;
  out.writeUInt16BE(x, 2);
  out.writeUInt16BE(y, 4);
  out.writeUInt16BE(width, 6);
  out.writeUInt16BE(height, 8);
  return out;
}

/** RFC 6143 7.5.4: u8 type, u8 down-flag, 2 padding, u32 key. */
export function encodeKeyEvent(key: number, down: boolean): Buffer {
  const out = Buffer.alloc(8);
  out[0] = ClientMessageType.KeyEvent;
  out[1] = down ? 1 : 0;
  out.writeUInt32BE(key >>> 0, 4);
  return out;
}

/** RFC 6143 7.5.5: u8 type, u8 button-mask, u16 x, u16 y. */
export function encodePointerEvent(buttonMask: number, x: number, y: number): Buffer {
  const out = Buffer.alloc(6);
  out[0] = ClientMessageType.PointerEvent;
  out[1] = buttonMask & 0xff;
  out.writeUInt16BE(x, 2);
  out.writeUInt16BE(y, 4);
  return out;
}

/** RFC 6143 7.5.6: u8 type, 3 padding, u32 length, Latin-1 text. */
export function encodeClientCutText(text: Buffer): Buffer {
  return encodeCutText(ClientMessageType.ClientCutText, text);
}

/** ClientCutText and ServerCutText share a layout: u8 type, 3 padding, u32 length, text. */
export function encodeCutText(type: number, text: Buffer): Buffer {
  const out = Buffer.alloc(8 + text.length);
  out[0] = type;
  out.writeUInt32BE(text.length, 4);
  text.copy(out, 8);
  return out;
}
