/**
 * The ExtendedClipboard pseudo-encoding (rfbproto "Extended Clipboard Pseudo-Encoding",
 * 0xc0a1e5ce): ClientCutText and ServerCutText with a negative s32 length carry u32 flags
 * (formats in bits 0-15, actions in bits 24-31) and |length| - 4 more bytes. A server announces
 * it with a ServerCutText whose flags have `caps`, sent on each SetEncodings that lists it.
 */

/** rfbproto: format bits (0-4; 5-15 are reserved for future formats). */
export const ClipboardFormat = { Text: 1 << 0, Rtf: 1 << 1, Html: 1 << 2, Dib: 1 << 3, Files: 1 << 4 } as const;
/** rfbproto: action bits (24-28; 29-31 are reserved). */
export const ClipboardAction = { Caps: 1 << 24, Request: 1 << 25, Peek: 1 << 26, Notify: 1 << 27, Provide: 1 << 28 } as const;

const FORMATS = 0x1f;
const ACTIONS = 0x1f << 24;
/** The flags header every extended message starts with. */
export const EXTENDED_CLIPBOARD_FLAGS_LENGTH = 4;

function bitCount(n: number): number {
  let c = 0;
  for (let v = n; v !== 0; v &= v - 1) c++;
  return c;
}

/**
 * Why an extended clipboard message with these `flags` and `length` (|length|, the bytes after the
 * length field, flags included) is not well formed, or undefined when it is:
 * - no reserved bit set (future formats 5-15, 16-23, future actions 29-31);
 * - `caps`: followed by exactly one u32 size per format bit;
 * - otherwise exactly one action: request, peek and notify carry nothing after the flags;
 *   provide names at least one format and carries its zlib stream.
 */
export function extendedClipboardProblem(flags: number, length: number): string | undefined {
  if (length < EXTENDED_CLIPBOARD_FLAGS_LENGTH) return `${length} bytes, shorter than the 4-byte flags`;
  const f = flags >>> 0;
  if ((f & ~(FORMATS | ACTIONS)) !== 0) return 'reserved flag bits set';
  const formats = f & FORMATS;
  const actions = f & ACTIONS;
  const after = length - EXTENDED_CLIPBOARD_FLAGS_LENGTH;
  if ((actions & ClipboardAction.Caps) !== 0) {
    const sizes = 4 * bitCount(formats);
    return after === sizes ? undefined : `caps with ${bitCount(formats)} formats carries ${after} bytes of sizes, not ${sizes}`;
  }
  if (bitCount(actions >>> 24) !== 1) return `${bitCount(actions >>> 24)} actions, not exactly one`;
  if (actions === ClipboardAction.Provide) {
    if (formats === 0) return 'provide names no format';
    return after > 0 ? undefined : 'provide without data';
  }
  return after === 0 ? undefined : `request, peek or notify carries ${after} bytes`;
}

/** Whether these flags announce capabilities (a server that sends one supports the extension). */
export function isClipboardCaps(flags: number): boolean {
  return ((flags >>> 0) & ClipboardAction.Caps) !== 0;
}
