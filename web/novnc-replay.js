// The one place the player reaches into noVNC beyond its public API (RFB's constructor, viewOnly,
// scaleViewport, disconnect, events, and a WebSocket-like channel it reads from).
//
// Why: the player feeds noVNC a whole recording at once. noVNC reads its receive queue when a
// message arrives and stops at an update while its display draws; it has no public way to say
// "everything you were given is drawn" nor to read on. So this module looks at noVNC's receive
// queue and display, and calls its message handler, through the names below: nothing else in the
// page does.
//
// If noVNC changes: `NOVNC_INTERNALS` lists each name with the source file that must define it;
// test/unit/web/novnc-replay.test.ts checks them against the installed noVNC (a version bump that
// renames one fails there, loudly), and `checkInternals` throws at run time with the name missing
// instead of a player that silently stalls.

/** The noVNC version these internals were read from (package.json of @novnc/novnc). */
export const NOVNC_VERSION = '1.7';

/** [what the player uses, noVNC source file, a pattern its source must contain]. */
export const NOVNC_INTERNALS = Object.freeze([
  ['rfb._sock (the receive queue\'s Websock)', 'core/rfb.js', /this\._sock = new Websock\(\)/],
  ['rfb._flushing (waiting for the display)', 'core/rfb.js', /this\._flushing = (true|false)/],
  ['rfb._display (the Display)', 'core/rfb.js', /this\._display = new Display\(/],
  ['rfb._handleMessage() (reads the queue)', 'core/rfb.js', /^ {4}_handleMessage\(\) \{/m],
  ['rfb._rfbConnectionState', 'core/rfb.js', /this\._rfbConnectionState = ''/],
  ['websock._rQi (read position)', 'core/websock.js', /this\._rQi = 0;/],
  ['websock._rQlen (queue length)', 'core/websock.js', /this\._rQlen = 0;/],
  ['display.pending()', 'core/display.js', /^ {4}pending\(\) \{/m],
  ['display.flush() (a promise: drawn)', 'core/display.js', /^ {4}flush\(\) \{/m],
]);

/** Throws, naming what is missing, when `rfb` is not the noVNC this module was written for. */
export function checkInternals(rfb) {
  const sock = rfb._sock;
  const missing = [];
  if (!sock || typeof sock._rQi !== 'number' || typeof sock._rQlen !== 'number') missing.push('_sock._rQi/_rQlen');
  if (typeof rfb._flushing !== 'boolean') missing.push('_flushing');
  if (typeof rfb._handleMessage !== 'function') missing.push('_handleMessage');
  if (typeof rfb._rfbConnectionState !== 'string') missing.push('_rfbConnectionState');
  if (typeof rfb._display?.pending !== 'function' || typeof rfb._display?.flush !== 'function') missing.push('_display.pending/flush');
  if (missing.length > 0) throw new Error(`the player needs noVNC ${NOVNC_VERSION}'s ${missing.join(', ')}; this noVNC has none (see web/novnc-replay.js)`);
}

/** Whether noVNC has read everything it was given. */
export function drained(rfb) {
  const sock = rfb._sock;
  return !sock || sock._rQi >= sock._rQlen;
}

/** Makes noVNC read on from its queue when it stopped after an update (not while it waits to draw). */
export function kick(rfb) {
  if (!drained(rfb) && !rfb._flushing && rfb._rfbConnectionState === 'connected') rfb._handleMessage();
}

/**
 * Resolves once noVNC has drawn everything it was given (or `current()` turns false: the player
 * was replaced). A message the recording cut short is left where it is.
 */
export async function settled(rfb, current) {
  const sock = rfb._sock;
  for (let guard = 0; guard < 10_000_000 && current(); guard++) {
    if (drained(rfb)) return;
    if (rfb._flushing || rfb._display.pending()) {
      // noVNC waits for its display to draw a frame before the next update: wait with it.
      await rfb._display.flush();
      await Promise.resolve();
      continue;
    }
    const before = sock._rQi;
    kick(rfb);
    // What is left does not move: a message the recording cut short.
    if (sock._rQi === before && !rfb._flushing) return;
  }
}
