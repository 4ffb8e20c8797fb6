/**
 * Synchronous framer for the client-to-server message stream (after the handshake): pushed chunks
 * in, complete decoded messages out, the remainder kept. Used by the demo server to read its
 * clients and by the proxy to validate browser input before relaying it.
 */
import { ProtocolError } from '../errors.js';
import { ClientMessageType } from './constants.js';
import type { ClientMessage } from './client-messages.js';
import { extendedClipboardProblem } from './extended-clipboard.js';
import { decodePixelFormat, validatePixelFormat } from './pixel-format.js';

/** Default cap on SetEncodings' count (noVNC sends about 25). */
export const DEFAULT_MAX_ENCODINGS = 1024;
/** Default cap on ClientCutText's length: 1 MiB. */
export const DEFAULT_MAX_CUT_TEXT_LENGTH = 1024 * 1024;
/** rfbproto (Fence): the payload is at most 64 bytes. */
const MAX_FENCE_PAYLOAD = 64;
/** Entries of the framing list kept between calls (offset and length of 32 messages). */
const KEPT_BOUNDS = 64;

/** Options of a {@link ClientMessageFramer}. */
export interface ClientMessageFramerOptions {
  /** Largest SetEncodings count accepted; default 1024. */
  maxEncodings?: number;
  /** Largest ClientCutText length accepted; default 1 MiB. */
  maxCutTextLength?: number;
  /**
   * Accept the registered extension messages noVNC sends once a server announced them
   * (EnableContinuousUpdates, ClientFence, xvp, SetDesktopSize, QEMU key/audio, extended
   * clipboard). Default true; false accepts RFC 6143's messages only.
   */
  extensions?: boolean;
  /**
   * PointerEvents carry the ExtendedMouseButtons byte (7 bytes when bit 7 of the mask is set).
   * Only true after the server confirmed ExtendedMouseButtons; default false.
   */
  extendedPointerEvents?: boolean;
}

/**
 * Frames and decodes client messages. Every length read from the peer is checked against its cap
 * before any buffer of that size exists. After a ProtocolError the framer stays failed.
 */
export class ClientMessageFramer {
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Bytes needed before parsing can make progress (a header or a whole message). */
  private need = 1;
  private failure: ProtocolError | undefined;
  private readonly maxEncodings: number;
  private readonly maxCutText: number;
  private readonly extensions: boolean;
  private extendedPointer: boolean;
  /** The last frame() call's messages: offset and length of each, in pairs (reused from call to call). */
  private bounds: number[] = [];
  private count = 0;

  constructor(opts: ClientMessageFramerOptions = {}) {
    this.maxEncodings = opts.maxEncodings ?? DEFAULT_MAX_ENCODINGS;
    this.maxCutText = opts.maxCutTextLength ?? DEFAULT_MAX_CUT_TEXT_LENGTH;
    this.extensions = opts.extensions ?? true;
    this.extendedPointer = opts.extendedPointerEvents ?? false;
  }

  /** Bytes held back as an incomplete message. */
  get bufferedLength(): number {
    return this.partsLength;
  }

  /** Switches 7-byte extended PointerEvents on or off (after ExtendedMouseButtons was confirmed). */
  setExtendedPointerEvents(on: boolean): void {
    this.extendedPointer = on;
  }

  /**
   * Adds bytes; returns the messages completed by them, in order. Throws ProtocolError on a
   * malformed message (unknown type, length over a cap, invalid pixel format).
   */
  push(chunk: Buffer): ClientMessage[] {
    const buf = this.frame(chunk);
    const out = new Array<ClientMessage>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.decodeAt(buf, this.bounds[2 * i]!, this.bounds[2 * i + 1]!);
    this.forget();
    return out;
  }

  /**
   * Adds bytes and frames and validates the messages they complete without decoding them (no
   * object per message): returns the buffer they are in (`chunk` itself unless bytes were held
   * from earlier), and {@link framed} says how many, {@link offsetOf} and {@link lengthOf} where.
   * Valid until the next call. Every check of {@link push} is made, all before this returns: on a
   * malformed message it throws ProtocolError and frames nothing.
   */
  frame(chunk: Buffer): Buffer {
    this.count = 0;
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return chunk;
    // Nothing held (the common case; `need` is then 1): the chunk is parsed as it is, without a list.
    const held = this.partsLength > 0;
    if (held) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      // Cheap until something can complete: a large message arriving in many chunks is joined once.
      if (this.partsLength < this.need) return chunk;
    }
    const buf = held ? Buffer.concat(this.parts, this.partsLength) : chunk;
    const bounds = this.bounds;
    let n = 0;
    let off = 0;
    try {
      while (off < buf.length) {
        const len = this.frameLength(buf, off, buf.length - off);
        if (len > buf.length - off) {
          this.need = len;
          break;
        }
        this.check(buf, off, len);
        // The list keeps its size from message to message (no allocation once it is large enough).
        bounds[2 * n] = off;
        bounds[2 * n + 1] = len;
        n++;
        off += len;
      }
    } catch (err) {
      this.failure = err instanceof ProtocolError ? err : new ProtocolError(String(err));
      this.parts = [];
      this.partsLength = 0;
      throw this.failure;
    }
    this.count = n;
    if (off === buf.length) {
      if (held) this.parts = [];
      this.partsLength = 0;
      this.need = 1;
    } else {
      const rest = buf.subarray(off);
      this.parts = [rest];
      this.partsLength = rest.length;
    }
    return buf;
  }

  /**
   * Done with the last {@link frame} call's messages: a list made large by a chunk of many
   * messages is dropped (an idle session keeps a few numbers, not one per message of a burst).
   */
  forget(): void {
    this.count = 0;
    if (this.bounds.length > KEPT_BOUNDS) this.bounds = [];
  }

  /** How many messages the last {@link frame} call completed. */
  get framed(): number {
    return this.count;
  }

  /** Where message `i` of the last {@link frame} call starts in the buffer it returned. */
  offsetOf(i: number): number {
    return this.bounds[2 * i]!;
  }

  /** Message `i`'s length (of the last {@link frame} call). */
  lengthOf(i: number): number {
    return this.bounds[2 * i + 1]!;
  }

  /**
   * The full length of the message at `off`, or, when fewer bytes than its header are available,
   * the header's length (enough to learn the full length next time).
   */
  private frameLength(buf: Buffer, off: number, avail: number): number {
    const type = buf[off] ?? -1;
    switch (type) {
      case ClientMessageType.SetPixelFormat:
        return 20; // RFC 6143 7.5.1: u8 type, 3 padding, 16-byte PIXEL_FORMAT
      case ClientMessageType.SetEncodings: {
        // RFC 6143 7.5.2: u8 type, padding, u16 number-of-encodings, then s32 each
        if (avail < 4) return 4;
        const count = buf.readUInt16BE(off + 2);
        if (count > this.maxEncodings) throw new ProtocolError(`SetEncodings count ${count} exceeds the limit of ${this.maxEncodings}`);
        return 4 + 4 * count;
      }
      case ClientMessageType.FramebufferUpdateRequest:
        return 10; // RFC 6143 7.5.3
      case ClientMessageType.KeyEvent:
        return 8; // RFC 6143 7.5.4
      case ClientMessageType.PointerEvent:
        // RFC 6143 7.5.5: 6 bytes; ExtendedMouseButtons adds a byte when the mask's bit 7 is set.
        if (!this.extendedPointer) return 6;
        if (avail < 2) return 2;
        return ((buf[off + 1] ?? 0) & 0x80) !== 0 ? 7 : 6;
      case ClientMessageType.ClientCutText: {
        // RFC 6143 7.5.6: u8 type, 3 padding, u32 length, text. ExtendedClipboard sends the
        // length negated (s32).
        if (avail < 8) return 8;
        const signed = buf.readInt32BE(off + 4);
        if (signed < 0 && !this.extensions) throw new ProtocolError('ClientCutText with a negative length (extended clipboard) is not accepted');
        const length = Math.abs(signed);
        if (length > this.maxCutText) throw new ProtocolError(`ClientCutText length ${length} exceeds the limit of ${this.maxCutText}`);
        return 8 + length;
      }
    }
    if (!this.extensions) throw unknownType(type);
    switch (type) {
      case ClientMessageType.EnableContinuousUpdates:
        return 10; // u8 type, u8 enable, u16 x, y, width, height
      case ClientMessageType.ClientFence: {
        // u8 type, 3 padding, u32 flags, u8 length, payload
        if (avail < 9) return 9;
        const length = buf[off + 8] ?? 0;
        if (length > MAX_FENCE_PAYLOAD) throw new ProtocolError(`ClientFence payload of ${length} bytes exceeds the limit of ${MAX_FENCE_PAYLOAD}`);
        return 9 + length;
      }
      case ClientMessageType.Xvp:
        return 4; // u8 type, padding, u8 version, u8 operation
      case ClientMessageType.SetDesktopSize:
        // u8 type, padding, u16 width, u16 height, u8 number-of-screens, padding, 16 bytes a screen
        if (avail < 8) return 8;
        return 8 + 16 * (buf[off + 6] ?? 0);
      case ClientMessageType.QemuClientMessage: {
        if (avail < 2) return 2;
        const sub = buf[off + 1];
        if (sub === 0) return 12; // ExtendedKeyEvent: u16 down, u32 keysym, u32 keycode
        if (sub === 1) {
          // Audio: u16 operation; operation 2 (set format) adds u8 format, u8 channels, u32 frequency.
          if (avail < 4) return 4;
          const op = buf.readUInt16BE(off + 2);
          if (op === 0 || op === 1) return 4;
          if (op === 2) return 10;
          throw new ProtocolError(`unknown QEMU audio operation ${op}`);
        }
        throw new ProtocolError(`unknown QEMU client message submessage ${String(sub)}`);
      }
    }
    throw unknownType(type);
  }

  /**
   * The checks of a framed message beyond its type and length (made before any message of the
   * call is returned): a valid pixel format, a well-formed extended clipboard message.
   */
  private check(buf: Buffer, off: number, len: number): void {
    const type = buf[off];
    if (type === ClientMessageType.SetPixelFormat) {
      validatePixelFormat(decodePixelFormat(buf, off + 4));
    } else if (type === ClientMessageType.ClientCutText && buf.readInt32BE(off + 4) < 0) {
      // ExtendedClipboard: u32 flags, then what the flags say (a server given less or more misreads the stream).
      const problem = extendedClipboardProblem(len >= 12 ? buf.readUInt32BE(off + 8) : 0, len - 8);
      if (problem !== undefined) throw new ProtocolError(`malformed extended clipboard message: ${problem}`);
    }
  }

  /** Decodes message `i` of the last {@link frame} call (in `buf`, the buffer frame() returned). */
  decode(buf: Buffer, i: number): ClientMessage {
    return this.decodeAt(buf, this.bounds[2 * i]!, this.bounds[2 * i + 1]!);
  }

  /** Decodes a message framed and checked by {@link frame}. */
  private decodeAt(buf: Buffer, off: number, len: number): ClientMessage {
    const raw = off === 0 && len === buf.length ? buf : buf.subarray(off, off + len);
    switch (raw[0]) {
      case ClientMessageType.SetPixelFormat:
        return { type: 'SetPixelFormat', pixelFormat: decodePixelFormat(raw, 4), raw };
      case ClientMessageType.SetEncodings: {
        const count = raw.readUInt16BE(2);
        const encodings = new Array<number>(count);
        for (let i = 0; i < count; i++) encodings[i] = raw.readInt32BE(4 + 4 * i);
        return { type: 'SetEncodings', encodings, raw };
      }
      case ClientMessageType.FramebufferUpdateRequest:
        return { type: 'FramebufferUpdateRequest', incremental: raw[1] !== 0, ...rectAt(raw, 2), raw };
      case ClientMessageType.KeyEvent:
        return { type: 'KeyEvent', down: raw[1] !== 0, key: raw.readUInt32BE(4), raw };
      case ClientMessageType.PointerEvent: {
        const low = raw[1] ?? 0;
        const buttonMask = len === 7 ? (low & 0x7f) | ((raw[6] ?? 0) << 7) : low;
        return { type: 'PointerEvent', buttonMask, x: raw.readUInt16BE(2), y: raw.readUInt16BE(4), raw };
      }
      case ClientMessageType.ClientCutText:
        return { type: 'ClientCutText', extended: raw.readInt32BE(4) < 0, text: raw.subarray(8), raw };
      case ClientMessageType.EnableContinuousUpdates:
        return { type: 'EnableContinuousUpdates', enable: raw[1] !== 0, ...rectAt(raw, 2), raw };
      case ClientMessageType.ClientFence:
        return { type: 'ClientFence', flags: raw.readUInt32BE(4), payload: raw.subarray(9), raw };
      case ClientMessageType.Xvp:
        return { type: 'Xvp', version: raw[2] ?? 0, operation: raw[3] ?? 0, raw };
      case ClientMessageType.SetDesktopSize:
        return { type: 'SetDesktopSize', width: raw.readUInt16BE(2), height: raw.readUInt16BE(4), screenCount: raw[6] ?? 0, raw };
      default:
        // ClientMessageType.QemuClientMessage: frameLength admitted only submessages 0 and 1.
        if (raw[1] === 0) return { type: 'QemuExtendedKeyEvent', down: raw.readUInt16BE(2) !== 0, key: raw.readUInt32BE(4), keycode: raw.readUInt32BE(8), raw };
        return { type: 'QemuAudio', operation: raw.readUInt16BE(2), raw };
    }
  }
}

/** u16 x, y, width, height at `off`. */
function rectAt(raw: Buffer, off: number): { x: number; y: number; width: number; height: number } {
  return { x: raw.readUInt16BE(off), y: raw.readUInt16BE(off + 2), width: raw.readUInt16BE(off + 4), height: raw.readUInt16BE(off + 6) };
}

function unknownType(type: number): ProtocolError {
  return new ProtocolError(`unknown client message type ${type}`);
}
