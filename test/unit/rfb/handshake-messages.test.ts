import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import {
  clientVersionFor,
  decodeServerInitHeader,
  encodeCappedUtf8,
  encodeProtocolVersion,
  encodeSecurityFailure,
  encodeSecurityResult,
  encodeSecurityTypes,
  encodeServerInit,
  parseProtocolVersion,
  sanitizePeerText,
} from '../../../src/rfb/handshake-messages.js';
import { RGB888_PIXEL_FORMAT } from '../../../src/rfb/pixel-format.js';

test('ProtocolVersion is "RFB 003.00x\\n"', () => {
  assert.equal(encodeProtocolVersion('3.3').toString('latin1'), 'RFB 003.003\n');
  assert.equal(encodeProtocolVersion('3.7').toString('latin1'), 'RFB 003.007\n');
  assert.equal(encodeProtocolVersion('3.8').toString('latin1'), 'RFB 003.008\n');
  assert.deepEqual(parseProtocolVersion(Buffer.from('RFB 003.889\n')), { major: 3, minor: 889 });
});

test('malformed version strings are refused with the bytes shown printable', () => {
  for (const junk of ['RFB 003.008 ', 'RFB 3.8\n    ', 'RFB 003.00a\n', 'rfb 003.008\n', 'SSH-2.0-Open', 'HTTP/1.1 400']) {
    assert.throws(() => parseProtocolVersion(Buffer.from(junk)), (e: unknown) => e instanceof ProtocolError && /not an RFB ProtocolVersion/.test(e.message), junk);
  }
  assert.throws(() => parseProtocolVersion(Buffer.from([0, 1, 2, 0x1b, 0x5b, 0x32, 0x4a, 0, 0, 0, 0, 0])), /"\\x00\\x01\\x02\\x1b\[2J/);
});

test('a client answers min(server, 3.8), other 3.x as 3.3 (RFC 6143 7.1.1)', () => {
  const cases: Array<[number, number, string]> = [
    [3, 3, '3.3'], [3, 7, '3.7'], [3, 8, '3.8'], [3, 889, '3.3'], [3, 6, '3.3'], [3, 5, '3.3'], [3, 14, '3.3'], [4, 1, '3.8'], [5, 0, '3.8'],
  ];
  for (const [major, minor, expected] of cases) assert.equal(clientVersionFor({ major, minor }), expected, `${major}.${minor}`);
  assert.equal(clientVersionFor({ major: 3, minor: 8 }, '3.7'), '3.7');
  assert.equal(clientVersionFor({ major: 3, minor: 7 }, '3.3'), '3.3');
  assert.throws(() => clientVersionFor({ major: 2, minor: 0 }), /unsupported RFB version 002.000/);
  assert.throws(() => clientVersionFor({ major: 0, minor: 0 }), ProtocolError);
});

test('security step messages per version', () => {
  assert.deepEqual([...encodeSecurityTypes([1, 2])], [2, 1, 2]);
  assert.throws(() => encodeSecurityTypes([]), RangeError);
  assert.equal(encodeSecurityFailure('3.8', 'no').toString('hex'), '00' + '00000002' + '6e6f');
  assert.equal(encodeSecurityFailure('3.3', 'no').toString('hex'), '00000000' + '00000002' + '6e6f');
  assert.equal(encodeSecurityFailure('3.7', 'x'.repeat(300)).length, 1 + 4 + 256);
  assert.equal(encodeSecurityResult('3.8', true).toString('hex'), '00000000');
  assert.equal(encodeSecurityResult('3.8', false, 'bad').toString('hex'), '00000001' + '00000003' + '626164');
  assert.equal(encodeSecurityResult('3.7', false, 'bad').toString('hex'), '00000001');
  assert.equal(encodeSecurityResult('3.3', false).toString('hex'), '00000001');
});

test('ServerInit encodes RFC 6143 7.3.2 and caps the name on a character boundary', () => {
  const buf = encodeServerInit({ width: 800, height: 480, pixelFormat: RGB888_PIXEL_FORMAT, name: 'ecs-демо' });
  const head = decodeServerInitHeader(buf);
  assert.deepEqual(head, { width: 800, height: 480, pixelFormat: { ...RGB888_PIXEL_FORMAT }, nameLength: Buffer.byteLength('ecs-демо') });
  assert.equal(buf.subarray(24).toString('utf8'), 'ecs-демо');
  const capped = encodeServerInit({ width: 1, height: 1, pixelFormat: RGB888_PIXEL_FORMAT, name: 'ж'.repeat(600) });
  assert.equal(decodeServerInitHeader(capped).nameLength, 1024);
  assert.equal(encodeCappedUtf8('aж', 2).toString('utf8'), 'a');
  assert.equal(encodeCappedUtf8('aж', 3).toString('utf8'), 'aж');
});

test('peer text is made printable', () => {
  assert.equal(sanitizePeerText(Buffer.from('bad\x1b[2Jpass\nword\x7f')), 'bad\ufffd[2Jpass\ufffdword\ufffd');
  assert.equal(sanitizePeerText(Buffer.from([0xff, 0x41])), '\ufffdA');
});
