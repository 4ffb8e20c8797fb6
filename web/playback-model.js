// The playback page's pure logic (no DOM): parsing a recording's records, the timeline's
// markers, and the RFB handshake the player is fed before the recorded bytes. The unit tests
// import this file in Node as it is served.
//
// Records (src/recording/recording-file.ts): u8 type, u32 ms since the start, u32 length, payload.

export const RecordType = Object.freeze({ ServerInit: 0, ServerBytes: 1, Pointer: 2, Key: 3, ClientCutText: 4, End: 5, Keyframe: 6 });

/**
 * @typedef {{ t: number, kind: 'pointer' | 'key' | 'clipboard' }} Marker
 * @typedef {{ t: number, bytes: Uint8Array }} Chunk
 * @typedef {{ t: number, index: number, bytes: Uint8Array }} Keyframe  the whole screen after chunks[0..index)
 * @typedef {{ serverInit: Uint8Array | null, chunks: Chunk[], keyframes: Keyframe[], markers: Marker[], durationMs: number, endReason: string | null }} Recording
 */

/**
 * Splits the records of a recording. Pointer markers are button presses (not every move);
 * key markers exist only when keystrokes were recorded.
 *
 * @param {ArrayBuffer | Uint8Array} data
 * @returns {Recording}
 */
export function parseRecording(data) {
  const u8 = data instanceof Uint8Array ? data : new Uint8Array(data);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  /** @type {Recording} */
  const out = { serverInit: null, chunks: [], keyframes: [], markers: [], durationMs: 0, endReason: null };
  let buttons = 0;
  let p = 0;
  while (p + 9 <= u8.length) {
    const type = u8[p];
    const t = view.getUint32(p + 1);
    const len = view.getUint32(p + 5);
    if (p + 9 + len > u8.length) break;
    const payload = u8.subarray(p + 9, p + 9 + len);
    p += 9 + len;
    if (t > out.durationMs) out.durationMs = t;
    switch (type) {
      case RecordType.ServerInit:
        out.serverInit = payload;
        break;
      case RecordType.ServerBytes:
        out.chunks.push({ t, bytes: payload });
        break;
      case RecordType.Keyframe:
        // The seekable form (data?seekable=1): a fresh player starts here.
        out.keyframes.push({ t, index: out.chunks.length, bytes: payload });
        break;
      case RecordType.Pointer: {
        const mask = payload[1] ?? 0;
        // A button pressed that was not: one marker per click, not per move.
        if ((mask & ~buttons) !== 0) out.markers.push({ t, kind: 'pointer' });
        buttons = mask;
        break;
      }
      case RecordType.Key:
        if ((payload[0] === 4 && payload[1] === 1) || (payload[0] === 255 && payload[3] === 1)) out.markers.push({ t, kind: 'key' });
        break;
      case RecordType.ClientCutText:
        out.markers.push({ t, kind: 'clipboard' });
        break;
      case RecordType.End:
        try {
          out.endReason = String(JSON.parse(new TextDecoder().decode(payload)).reason ?? '');
        } catch {
          out.endReason = '';
        }
        break;
      default:
        break;
    }
  }
  return out;
}

/**
 * What a VNC server sends a client before its first update (RFB 3.8, security type None),
 * ending with the recorded ServerInit: the player's "server".
 *
 * @param {Uint8Array} serverInit
 * @returns {Uint8Array}
 */
export function handshakeBytes(serverInit) {
  const version = new TextEncoder().encode('RFB 003.008\n');
  const out = new Uint8Array(version.length + 2 + 4 + serverInit.length);
  out.set(version, 0);
  out.set([1, 1], version.length);
  out.set([0, 0, 0, 0], version.length + 2);
  out.set(serverInit, version.length + 6);
  return out;
}

/**
 * Index of the first chunk later than `t` (the chunks up to it draw the screen at `t`).
 *
 * @param {Chunk[]} chunks
 * @param {number} t
 * @returns {number}
 */
export function chunkIndexAfter(chunks, t) {
  return countAtMost(chunks, (c) => c.t, t);
}

/** How many of `items` (sorted by `key`) have a key at most `v` (a binary search). */
function countAtMost(items, key, v) {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(items[mid]) <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The last keyframe a player can start from to show the screen after chunks[0..end), or null.
 *
 * @param {Keyframe[]} keyframes
 * @param {number} end
 * @returns {Keyframe | null}
 */
export function keyframeBefore(keyframes, end) {
  const n = countAtMost(keyframes, (k) => k.index, end);
  return n > 0 ? keyframes[n - 1] : null;
}

/**
 * Chunks [from, to) joined into messages of at most `max` bytes (fewer, larger messages replay faster).
 *
 * @param {Chunk[]} chunks
 * @param {number} from
 * @param {number} to
 * @param {number} max
 * @returns {Uint8Array[]}
 */
export function batches(chunks, from, to, max) {
  const out = [];
  let parts = [];
  let size = 0;
  const emit = () => {
    if (parts.length === 0) return;
    const b = new Uint8Array(size);
    let o = 0;
    for (const x of parts) {
      b.set(x, o);
      o += x.length;
    }
    out.push(b);
    parts = [];
    size = 0;
  };
  for (let i = from; i < to; i++) {
    const bytes = chunks[i].bytes;
    if (size > 0 && size + bytes.length > max) emit();
    parts.push(bytes);
    size += bytes.length;
  }
  emit();
  return out;
}

/** Speeds the player offers. */
export const SPEEDS = Object.freeze([1, 2, 4, 8]);

/**
 * `m:ss` or `h:mm:ss`.
 *
 * @param {number} ms
 * @returns {string}
 */
export function formatTime(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
