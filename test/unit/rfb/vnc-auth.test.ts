import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VNC_AUTH_CHALLENGE_LENGTH, vncAuthChallenge, vncAuthResponse, verifyVncAuthResponse } from '../../../src/rfb/vnc-auth.js';

const challenge = Buffer.from([...Array(16).keys()]);

test('vncAuthResponse matches the known vector (password "password", challenge 00..0f)', () => {
  assert.equal(vncAuthResponse('password', challenge).toString('hex'), 'b866924125c8eebb9debc1db61c538e2');
});

test('only the first 8 bytes of the password count, shorter ones are zero-padded', () => {
  assert.deepEqual(vncAuthResponse('password-and-more', challenge), vncAuthResponse('password', challenge));
  assert.deepEqual(vncAuthResponse('pw', challenge), vncAuthResponse('pw\0\0\0\0\0\0', challenge));
  assert.notDeepEqual(vncAuthResponse('passwore', challenge), vncAuthResponse('password', challenge));
});

test('verifyVncAuthResponse accepts the right answer and refuses others', () => {
  const c = vncAuthChallenge();
  assert.equal(c.length, VNC_AUTH_CHALLENGE_LENGTH);
  assert.equal(verifyVncAuthResponse('secret', c, vncAuthResponse('secret', c)), true);
  assert.equal(verifyVncAuthResponse('secret', c, vncAuthResponse('Secret', c)), false);
  assert.equal(verifyVncAuthResponse('secret', c, Buffer.alloc(15)), false);
});

test('a challenge of the wrong length is refused', () => {
  assert.throws(() => vncAuthResponse('x', Buffer.alloc(8)), RangeError);
});
