// The player's one wrapper around noVNC internals (web/novnc-replay.js), run in Node as served:
// every internal it names is in the installed noVNC's source, the installed noVNC is the version it
// was written for, and at run time an RFB without them is refused with the name missing. A noVNC
// upgrade that renames one fails here, loudly, before a player stalls.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findNovncDir, findWebDir } from '../../../src/web/static-handler.js';

interface Replay {
  NOVNC_VERSION: string;
  NOVNC_INTERNALS: ReadonlyArray<[string, string, RegExp]>;
  checkInternals(rfb: unknown): void;
  drained(rfb: unknown): boolean;
  kick(rfb: unknown): void;
}

let replay: Replay;
/** The noVNC the service serves at /novnc/. */
const novncDir = findNovncDir();

before(async () => {
  replay = (await import(pathToFileURL(join(findWebDir(), 'novnc-replay.js')).href)) as Replay;
});

test('the installed noVNC is the version the wrapper was written for, and defines every internal it uses', () => {
  const version = (JSON.parse(readFileSync(join(novncDir, 'package.json'), 'utf8')) as { version: string }).version;
  assert.ok(version.startsWith(`${replay.NOVNC_VERSION}.`), `noVNC ${version} installed; web/novnc-replay.js was written for ${replay.NOVNC_VERSION}: check its internals and update it`);
  assert.ok(replay.NOVNC_INTERNALS.length >= 9);
  for (const [what, file, pattern] of replay.NOVNC_INTERNALS) {
    assert.match(readFileSync(join(novncDir, file), 'utf8'), pattern, `noVNC ${version}'s ${file} no longer has ${what}: web/novnc-replay.js must change`);
  }
});

test('at run time an RFB without those internals is refused, naming what is missing; one with them is read', () => {
  assert.throws(() => replay.checkInternals({}), /the player needs noVNC 1\.7's _sock\._rQi\/_rQlen, _flushing, _handleMessage, _rfbConnectionState, _display\.pending\/flush/);
  let handled = 0;
  const rfb = {
    _sock: { _rQi: 0, _rQlen: 10 }, _flushing: false, _rfbConnectionState: 'connected',
    _display: { pending: () => false, flush: () => Promise.resolve() },
    _handleMessage() {
      handled++;
      this._sock._rQi = 10;
    },
  };
  replay.checkInternals(rfb);
  assert.equal(replay.drained(rfb), false);
  replay.kick(rfb);
  assert.equal(handled, 1);
  assert.equal(replay.drained(rfb), true);
  // Drawing: noVNC reads on by itself once its display has drawn.
  rfb._sock._rQi = 0;
  rfb._flushing = true;
  replay.kick(rfb);
  assert.equal(handled, 1);
});
