/**
 * Follows a server's message stream from the end of ServerInit up to its first FramebufferUpdate,
 * to learn whether the server announced the ExtendedClipboard pseudo-encoding (a ServerCutText
 * with `caps`). It frames only the messages that may come before a first update, keeps no more
 * than a message header, and stops for good at the first FramebufferUpdate, at a message it
 * cannot frame, or at a malformed one: after that it costs nothing.
 *
 * Why that window is enough: rfbproto requires the caps message "on each SetEncodings message
 * received which includes the Extended Clipboard pseudo-encoding", servers handle client messages
 * in order, and a client sends SetEncodings before its first FramebufferUpdateRequest (noVNC sends
 * SetPixelFormat, SetEncodings, FramebufferUpdateRequest together). A caps message seen here is
 * real (every byte before it was framed); one that only a later SetEncodings could bring is never
 * asked for (the proxy removes the pseudo-encoding from later lists once the window closed without it).
 */
import { EXTENDED_CLIPBOARD_FLAGS_LENGTH, extendedClipboardProblem, isClipboardCaps } from './extended-clipboard.js';
import { ServerMessageType } from './constants.js';

/** Registered server messages that may come before a first update (rfbproto 7.7 and the extensions noVNC asks for). */
const EndOfContinuousUpdates = 150;
const ServerFence = 248;
const Xvp = 250;
const QemuServerMessage = 255;
/** rfbproto (Fence): the payload is at most 64 bytes. */
const MAX_FENCE_PAYLOAD = 64;

export type ScanEnd = 'framebuffer-update' | 'unknown-message' | 'malformed';

export class ServerCapabilityScanner {
  private readonly head = Buffer.alloc(12);
  private have = 0;
  /** Header bytes needed before the current message can be framed further. */
  private need = 1;
  /** Body bytes still to pass over. */
  private skip = 0;
  /** Inside an extended ServerCutText: its |length| (the flags are being read). */
  private cutLength = -1;
  private caps = false;
  private end: ScanEnd | null = null;

  /** Whether the server announced ExtendedClipboard (so far; final once `done`). */
  get extendedClipboard(): boolean {
    return this.caps;
  }

  /** Whether the window is over (nothing more will be learnt). */
  get done(): boolean {
    return this.end !== null;
  }

  /** Why the window ended, or null while it lasts. */
  get endedBy(): ScanEnd | null {
    return this.end;
  }

  /** The next bytes of the server's stream, in order. */
  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.end === null) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(this.need - this.have, chunk.length - off);
      chunk.copy(this.head, this.have, off, off + n);
      this.have += n;
      off += n;
      if (this.have === this.need) this.step();
    }
  }

  /** The header holds `need` bytes: frame further, or finish the message. */
  private step(): void {
    const h = this.head;
    if (this.cutLength >= 0) {
      // The flags of an extended ServerCutText.
      const flags = h.readUInt32BE(0);
      if (extendedClipboardProblem(flags, this.cutLength) !== undefined) return this.stop('malformed');
      if (isClipboardCaps(flags)) this.caps = true;
      return this.next(this.cutLength - EXTENDED_CLIPBOARD_FLAGS_LENGTH);
    }
    switch (h[0]) {
      case ServerMessageType.FramebufferUpdate:
        return this.stop('framebuffer-update');
      case ServerMessageType.SetColourMapEntries:
        // RFC 6143 7.6.2: u8 type, padding, u16 first-colour, u16 number-of-colours, 6 bytes each.
        if (this.have < 6) return void (this.need = 6);
        return this.next(6 * h.readUInt16BE(4));
      case ServerMessageType.Bell:
        return this.next(0); // RFC 6143 7.6.3: the type alone
      case ServerMessageType.ServerCutText: {
        // RFC 6143 7.6.4: u8 type, 3 padding, u32 length; ExtendedClipboard: s32, negative.
        if (this.have < 8) return void (this.need = 8);
        const length = h.readInt32BE(4);
        if (length >= 0) return this.next(length);
        this.cutLength = -length;
        if (this.cutLength < EXTENDED_CLIPBOARD_FLAGS_LENGTH) return this.stop('malformed');
        this.have = 0;
        this.need = EXTENDED_CLIPBOARD_FLAGS_LENGTH;
        return;
      }
      case EndOfContinuousUpdates:
        return this.next(0); // the type alone
      case ServerFence: {
        // u8 type, 3 padding, u32 flags, u8 length, payload.
        if (this.have < 9) return void (this.need = 9);
        const length = h[8]!;
        return length > MAX_FENCE_PAYLOAD ? this.stop('malformed') : this.next(length);
      }
      case Xvp:
        // u8 type, padding, u8 version, u8 message.
        if (this.have < 4) return void (this.need = 4);
        return this.next(0);
      case QemuServerMessage: {
        // QEMU audio (submessage 1): u16 operation; 0 end and 1 begin stop there, 2 data has u32 length + data.
        if (this.have < 4) return void (this.need = 4);
        const op = h.readUInt16BE(2);
        if (h[1] !== 1 || op > 2) return this.stop('unknown-message');
        if (op < 2) return this.next(0);
        if (this.have < 8) return void (this.need = 8);
        return this.next(h.readUInt32BE(4));
      }
      default:
        return this.stop('unknown-message');
    }
  }

  /** The current message ends after `bodyBytes` more bytes. */
  private next(bodyBytes: number): void {
    this.skip = bodyBytes;
    this.have = 0;
    this.need = 1;
    this.cutLength = -1;
  }

  private stop(why: ScanEnd): void {
    this.end = why;
  }
}
