import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import { ClientMessageFramer } from '../../../src/rfb/client-message-framer.js';
import {
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeSetEncodings,
  encodeSetPixelFormat,
  isUserInput,
  isUserInputAt,
  type ClientMessage,
} from '../../../src/rfb/client-messages.js';
import { Encoding } from '../../../src/rfb/constants.js';
import { RGB888_PIXEL_FORMAT } from '../../../src/rfb/pixel-format.js';
import { chunkings } from '../../helpers/rfb-split.js';

/** Drops `raw` (checked separately) so messages compare by their fields. */
function fields(msgs: ClientMessage[]): object[] {
  return msgs.map(({ raw: _raw, ...rest }) => rest);
}

function pushAll(framer: ClientMessageFramer, chunks: Buffer[]): ClientMessage[] {
  return chunks.flatMap((c) => framer.push(c));
}

const standard: Array<[Buffer, object]> = [
  [encodeSetPixelFormat(RGB888_PIXEL_FORMAT), { type: 'SetPixelFormat', pixelFormat: { ...RGB888_PIXEL_FORMAT } }],
  [encodeSetEncodings([Encoding.ZRLE, Encoding.CopyRect, Encoding.Raw, Encoding.DesktopSize, Encoding.ExtendedClipboard]), { type: 'SetEncodings', encodings: [16, 1, 0, -223, -1063131698] }],
  [encodeSetEncodings([]), { type: 'SetEncodings', encodings: [] }],
  [encodeFramebufferUpdateRequest(true, 1, 2, 300, 400), { type: 'FramebufferUpdateRequest', incremental: true, x: 1, y: 2, width: 300, height: 400 }],
  [encodeKeyEvent(0xff0d, true), { type: 'KeyEvent', down: true, key: 0xff0d }],
  [encodePointerEvent(0x81, 640, 479), { type: 'PointerEvent', buttonMask: 0x81, x: 640, y: 479 }],
  [encodeClientCutText(Buffer.from('paste me')), { type: 'ClientCutText', extended: false, text: Buffer.from('paste me') }],
  [encodeClientCutText(Buffer.alloc(0)), { type: 'ClientCutText', extended: false, text: Buffer.alloc(0) }],
];

// Extension messages as noVNC 1.7 writes them (core/rfb.js RFB.messages).
const extended: Array<[Buffer, object]> = [
  [Buffer.from('96' + '01' + '0000' + '0000' + '0320' + '01e0', 'hex'), { type: 'EnableContinuousUpdates', enable: true, x: 0, y: 0, width: 800, height: 480 }],
  [Buffer.from('f8' + '000000' + '80000003' + '03' + '616263', 'hex'), { type: 'ClientFence', flags: 0x80000003, payload: Buffer.from('abc') }],
  [Buffer.from('fa' + '00' + '01' + '02', 'hex'), { type: 'Xvp', version: 1, operation: 2 }],
  [Buffer.from('fb00' + '0400' + '0300' + '01' + '00' + '00000000' + '0000' + '0000' + '0400' + '0300' + '00000000', 'hex'), { type: 'SetDesktopSize', width: 1024, height: 768, screenCount: 1 }],
  [Buffer.from('ff00' + '0001' + '00000061' + '0000001e', 'hex'), { type: 'QemuExtendedKeyEvent', down: true, key: 0x61, keycode: 0x1e }],
  [Buffer.from('ff01' + '0002' + '03' + '02' + '0000ac44', 'hex'), { type: 'QemuAudio', operation: 2 }],
  [Buffer.from('ff01' + '0000', 'hex'), { type: 'QemuAudio', operation: 0 }],
  // ExtendedClipboard: noVNC's caps reply, a notify, a provide of text (flags, then a zlib stream).
  [Buffer.from('06000000' + 'fffffff8' + '1f000001' + '00000000', 'hex'), { type: 'ClientCutText', extended: true, text: Buffer.from('1f00000100000000', 'hex') }],
  [Buffer.from('06000000' + 'fffffffc' + '08000001', 'hex'), { type: 'ClientCutText', extended: true, text: Buffer.from('08000001', 'hex') }],
  [Buffer.from('06000000' + 'fffffff9' + '10000001' + '789c03', 'hex'), { type: 'ClientCutText', extended: true, text: Buffer.from('10000001789c03', 'hex') }],
];

test('every client message decodes at every split point and byte by byte', () => {
  const all = [...standard, ...extended];
  const input = Buffer.concat(all.map(([b]) => b));
  for (const { label, chunks } of chunkings(input)) {
    const framer = new ClientMessageFramer();
    const msgs = pushAll(framer, chunks);
    assert.deepEqual(fields(msgs), all.map(([, m]) => m), label);
    assert.deepEqual(Buffer.concat(msgs.map((m) => m.raw)), input, label);
    assert.equal(framer.bufferedLength, 0, label);
  }
});

test('messages in one chunk come back as views of it, the remainder is kept', () => {
  const framer = new ClientMessageFramer();
  const key = encodeKeyEvent(0x61, true);
  const chunk = Buffer.concat([key, key.subarray(0, 3)]);
  const [first, ...rest] = framer.push(chunk);
  assert.equal(rest.length, 0);
  assert.equal(first?.raw.buffer, chunk.buffer);
  assert.equal(framer.bufferedLength, 3);
  assert.deepEqual(fields(framer.push(key.subarray(3))), [{ type: 'KeyEvent', down: true, key: 0x61 }]);
});

test('ExtendedMouseButtons pointer events are 7 bytes once switched on', () => {
  const framer = new ClientMessageFramer({ extendedPointerEvents: true });
  const ext = Buffer.from('05' + '81' + '0010' + '0020' + '01', 'hex');
  const plain = encodePointerEvent(0x01, 1, 2);
  for (const { label, chunks } of chunkings(Buffer.concat([ext, plain]))) {
    const f = new ClientMessageFramer({ extendedPointerEvents: true });
    assert.deepEqual(fields(pushAll(f, chunks)), [
      { type: 'PointerEvent', buttonMask: 0x81, x: 16, y: 32 },
      { type: 'PointerEvent', buttonMask: 1, x: 1, y: 2 },
    ], label);
  }
  // Switched off, the mask's bit 7 is button 8 of a plain 6-byte event.
  framer.setExtendedPointerEvents(false);
  assert.deepEqual(fields(framer.push(ext.subarray(0, 6))), [{ type: 'PointerEvent', buttonMask: 0x81, x: 16, y: 32 }]);
  assert.equal(framer.bufferedLength, 0);
});

test('isUserInput tells input from update requests', () => {
  const f = new ClientMessageFramer();
  const msgs = f.push(Buffer.concat([encodeKeyEvent(0x61, true), encodePointerEvent(0, 1, 1), encodeFramebufferUpdateRequest(true, 0, 0, 1, 1), encodeSetEncodings([0])]));
  assert.deepEqual(msgs.map(isUserInput), [true, true, false, false]);
});

/** frame()'s messages, as the bytes each one is (and what decode() makes of it). */
function framed(framer: ClientMessageFramer, chunk: Buffer): { bytes: Buffer[]; decoded: ClientMessage[] } {
  const buf = framer.frame(chunk);
  const bytes: Buffer[] = [];
  const decoded: ClientMessage[] = [];
  for (let i = 0; i < framer.framed; i++) {
    bytes.push(buf.subarray(framer.offsetOf(i), framer.offsetOf(i) + framer.lengthOf(i)));
    decoded.push(framer.decode(buf, i));
  }
  return { bytes, decoded };
}

test('frame() says where each message is, without decoding, at every split point; decode() gives what push() gives', () => {
  const all = [...standard, ...extended];
  const input = Buffer.concat(all.map(([b]) => b));
  for (const { label, chunks } of chunkings(input)) {
    const framer = new ClientMessageFramer();
    const got = chunks.map((c) => framed(framer, c));
    assert.deepEqual(got.flatMap((g) => g.bytes), all.map(([b]) => b), label);
    assert.deepEqual(fields(got.flatMap((g) => g.decoded)), all.map(([, m]) => m), label);
    assert.equal(framer.bufferedLength, 0, label);
  }
});

test('frame() of a whole chunk returns the chunk itself; held bytes are joined with the next chunk', () => {
  const framer = new ClientMessageFramer();
  const key = encodeKeyEvent(0x61, true);
  const chunk = Buffer.concat([key, key.subarray(0, 3)]);
  assert.equal(framer.frame(chunk), chunk);
  assert.equal(framer.framed, 1);
  assert.deepEqual([framer.offsetOf(0), framer.lengthOf(0)], [0, 8]);
  const joined = framer.frame(key.subarray(3));
  assert.deepEqual(joined, key);
  assert.equal(framer.framed, 1);
  framer.forget();
  assert.equal(framer.framed, 0);
});

test('frame() checks every message of the chunk before it returns: one malformed message frames none of the valid ones before it', () => {
  const valid = Buffer.concat([encodePointerEvent(1, 2, 3), encodeKeyEvent(0x61, true)]);
  const cases: Array<[Buffer, RegExp]> = [
    [encodeSetPixelFormat({ ...RGB888_PIXEL_FORMAT, bitsPerPixel: 24 }), /invalid pixel format/],
    [Buffer.from('06000000' + 'fffffffc' + '0a000001', 'hex'), /malformed extended clipboard message/],
    [Buffer.from([9]), /unknown client message type 9/],
  ];
  for (const [bad, message] of cases) {
    const f = new ClientMessageFramer();
    assert.throws(() => f.frame(Buffer.concat([valid, bad])), (e: unknown) => e instanceof ProtocolError && message.test(e.message));
    assert.equal(f.framed, 0, message.source);
  }
});

test('isUserInputAt reads what isUserInput decodes', () => {
  const input = Buffer.concat([...standard, ...extended].map(([b]) => b));
  const f = new ClientMessageFramer();
  const buf = f.frame(input);
  for (let i = 0; i < f.framed; i++) assert.equal(isUserInputAt(buf, f.offsetOf(i)), isUserInput(f.decode(buf, i)), `message ${i}`);
});

function rejects(framer: ClientMessageFramer, input: Buffer, message: RegExp): void {
  assert.throws(() => framer.push(input), (e: unknown) => e instanceof ProtocolError && message.test(e.message));
}

test('unknown message types are refused with the type named', () => {
  rejects(new ClientMessageFramer(), Buffer.from([7]), /unknown client message type 7$/);
  rejects(new ClientMessageFramer(), Buffer.concat([encodeKeyEvent(1, true), Buffer.from([1])]), /unknown client message type 1$/);
  rejects(new ClientMessageFramer(), Buffer.from('ff02', 'hex'), /unknown QEMU client message submessage 2/);
  rejects(new ClientMessageFramer(), Buffer.from('ff010009', 'hex'), /unknown QEMU audio operation 9/);
  const strict = { extensions: false };
  rejects(new ClientMessageFramer(strict), Buffer.from([150]), /unknown client message type 150/);
  rejects(new ClientMessageFramer(strict), Buffer.from('06000000fffffffc', 'hex'), /negative length/);
});

test('extended clipboard messages with malformed flags are refused (rfbproto ExtendedClipboard)', () => {
  // Length 0xFFFFFFFF (-1): no room for the flags.
  rejects(new ClientMessageFramer(), Buffer.from('06000000' + 'ffffffff' + '41', 'hex'), /malformed extended clipboard message: 1 bytes, shorter than the 4-byte flags/);
  rejects(new ClientMessageFramer(), Buffer.from('06000000' + 'fffffffc' + '0a000001', 'hex'), /malformed extended clipboard message: 2 actions/);
  rejects(new ClientMessageFramer(), Buffer.from('06000000' + 'fffffffc' + '08010001', 'hex'), /reserved flag bits/);
  rejects(new ClientMessageFramer(), Buffer.from('06000000' + 'fffffffc' + '10000001', 'hex'), /provide without data/);
  rejects(new ClientMessageFramer(), Buffer.from('06000000' + 'fffffffc' + '01000001', 'hex'), /caps with 1 formats carries 0 bytes of sizes/);
});

test('lengths over their caps are refused as soon as the header arrives, before the body', () => {
  // The claimed bodies never arrive: the error comes from the header alone.
  rejects(new ClientMessageFramer(), Buffer.from('0200ffff', 'hex'), /SetEncodings count 65535 exceeds the limit of 1024/);
  rejects(new ClientMessageFramer({ maxEncodings: 4 }), encodeSetEncodings([0, 1, 2, 3, 4]).subarray(0, 4), /count 5 exceeds the limit of 4/);
  rejects(new ClientMessageFramer(), Buffer.from('060000007fffffff', 'hex'), /ClientCutText length 2147483647 exceeds the limit of 1048576/);
  rejects(new ClientMessageFramer(), Buffer.from('0600000080000000', 'hex'), /ClientCutText length 2147483648 exceeds/);
  rejects(new ClientMessageFramer({ maxCutTextLength: 10 }), Buffer.from('060000000000000b', 'hex'), /length 11 exceeds the limit of 10/);
  rejects(new ClientMessageFramer(), Buffer.from('f800000000000000' + '41', 'hex'), /ClientFence payload of 65 bytes exceeds the limit of 64/);
  // Byte by byte too: nothing is reserved while the header trickles in.
  const f = new ClientMessageFramer();
  for (const b of Buffer.from('0200ff', 'hex')) assert.deepEqual(f.push(Buffer.from([b])), []);
  assert.equal(f.bufferedLength, 3);
  rejects(f, Buffer.from([0xff]), /count 65535/);
});

test('an invalid pixel format is refused', () => {
  const bad = encodeSetPixelFormat({ ...RGB888_PIXEL_FORMAT, bitsPerPixel: 24 });
  rejects(new ClientMessageFramer(), bad, /invalid pixel format: bits-per-pixel must be 8, 16 or 32, got 24/);
});

test('a failed framer stays failed', () => {
  const f = new ClientMessageFramer();
  rejects(f, Buffer.from([9]), /type 9/);
  rejects(f, encodeKeyEvent(1, true), /type 9/);
});

test('a large ClientCutText trickling in is joined once it is complete', () => {
  const text = Buffer.alloc(200_000, 0x61);
  const msg = encodeClientCutText(text);
  const f = new ClientMessageFramer();
  let out: ClientMessage[] = [];
  for (let i = 0; i < msg.length; i += 1000) out = out.concat(f.push(msg.subarray(i, i + 1000)));
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]?.type === 'ClientCutText' && out[0].text, text);
});
