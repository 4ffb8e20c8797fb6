import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipboardAction, ClipboardFormat, extendedClipboardProblem } from '../../../src/rfb/extended-clipboard.js';
import { ServerCapabilityScanner } from '../../../src/rfb/server-capability-scanner.js';
import { encodeBell, encodeServerCutText, encodeSetColourMapEntries } from '../../../src/rfb/server-messages.js';
import { chunkings } from '../../helpers/rfb-split.js';

const { Caps, Request, Peek, Notify, Provide } = ClipboardAction;
const { Text, Rtf } = ClipboardFormat;

test('extendedClipboardProblem: what noVNC and servers send is well formed', () => {
  // noVNC (core/rfb.js): caps with every action and text (one size), notify, notify of nothing, request, provide.
  assert.equal(extendedClipboardProblem(Caps | Request | Peek | Notify | Provide | Text, 8), undefined);
  assert.equal(extendedClipboardProblem(Notify | Text, 4), undefined);
  assert.equal(extendedClipboardProblem(Notify, 4), undefined);
  assert.equal(extendedClipboardProblem(Request | Text, 4), undefined);
  assert.equal(extendedClipboardProblem(Peek, 4), undefined);
  assert.equal(extendedClipboardProblem(Provide | Text, 4 + 20), undefined);
  assert.equal(extendedClipboardProblem(Caps | Text | Rtf, 12), undefined);
  assert.equal(extendedClipboardProblem(Caps, 4), undefined);
});

test('extendedClipboardProblem: malformed flags and lengths are named', () => {
  const cases: Array<[number, number, RegExp]> = [
    [0, 1, /shorter than the 4-byte flags/], // ClientCutText length 0xFFFFFFFF
    [0, 0, /shorter/],
    [Notify | (1 << 5), 4, /reserved flag bits/],
    [Notify | (1 << 16), 4, /reserved flag bits/],
    [Notify | (1 << 29), 4, /reserved flag bits/],
    [0x80000000 | Notify, 4, /reserved flag bits/],
    [Caps | Text, 4, /carries 0 bytes of sizes, not 4/],
    [Caps | Text, 12, /carries 8 bytes of sizes, not 4/],
    [Text, 4, /0 actions/],
    [Request | Notify | Text, 4, /2 actions/],
    [Notify | Text, 5, /carries 1 bytes/],
    [Provide | Text, 4, /provide without data/],
    [Provide, 10, /provide names no format/],
  ];
  for (const [flags, length, problem] of cases) assert.match(extendedClipboardProblem(flags, length) ?? 'well formed', problem, `flags 0x${(flags >>> 0).toString(16)} length ${length}`);
});

/** An extended ServerCutText: s32 -(4 + payload), flags, payload. */
function extendedCut(flags: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  head.writeInt32BE(-(4 + payload.length), 4);
  head.writeUInt32BE(flags >>> 0, 8);
  return Buffer.concat([head, payload]);
}

const CAPS = extendedCut(Caps | Request | Notify | Provide | Text, Buffer.alloc(4));
/** Every message a server may send before its first update, as TigerVNC, QEMU and others do. */
const PREAMBLE = [
  encodeBell(),
  encodeSetColourMapEntries(0, [[1, 2, 3], [4, 5, 6]]),
  // Plain clipboard text that looks like a caps message: it is text, not an announcement.
  encodeServerCutText(CAPS),
  Buffer.from('96', 'hex'), // EndOfContinuousUpdates
  Buffer.from('f8000000' + '80000002' + '03' + '616263', 'hex'), // ServerFence with a 3-byte payload
  Buffer.from('fa000101', 'hex'), // xvp: version 1, XVP_INIT
  Buffer.from('ff010001', 'hex'), // QEMU audio begin
  Buffer.from('ff010002' + '00000003' + '010203', 'hex'), // QEMU audio data
];
const UPDATE = Buffer.from('0000000100000000000100010000000012345678', 'hex');

function scan(chunks: Buffer[]): ServerCapabilityScanner {
  const s = new ServerCapabilityScanner();
  for (const c of chunks) s.push(c);
  return s;
}

test('the scanner finds a caps message among the messages before the first update, at every split point and byte by byte', () => {
  const input = Buffer.concat([...PREAMBLE, CAPS, UPDATE]);
  for (const { label, chunks } of chunkings(input)) {
    const s = scan(chunks);
    assert.equal(s.extendedClipboard, true, label);
    assert.equal(s.endedBy, 'framebuffer-update', label);
  }
});

test('no caps before the first update: not announced, whatever follows', () => {
  const input = Buffer.concat([...PREAMBLE, UPDATE, CAPS]);
  for (const { label, chunks } of chunkings(input)) {
    const s = scan(chunks);
    assert.equal(s.extendedClipboard, false, label);
    assert.equal(s.endedBy, 'framebuffer-update', label);
  }
  const open = scan([Buffer.concat(PREAMBLE)]);
  assert.equal(open.done, false, 'the window stays open until an update');
  assert.equal(open.extendedClipboard, false);
});

test('the scanner stops at what it cannot frame, without an announcement', () => {
  const stops: Array<[Buffer, string]> = [
    [Buffer.from('07', 'hex'), 'unknown-message'],
    [Buffer.from('ff020000', 'hex'), 'unknown-message'],
    [Buffer.from('ff010003', 'hex'), 'unknown-message'],
    [Buffer.from('03000000' + 'ffffffff' + '00', 'hex'), 'malformed'], // |length| 1
    [extendedCut(Caps | Text), 'malformed'], // caps without its size
    [Buffer.from('f8000000' + '00000000' + '41', 'hex'), 'malformed'], // a 65-byte fence payload
  ];
  for (const [bytes, why] of stops) {
    const s = scan([Buffer.concat([bytes, CAPS])]);
    assert.equal(s.endedBy, why, bytes.toString('hex'));
    assert.equal(s.extendedClipboard, false, bytes.toString('hex'));
  }
});

test('the scanner keeps no body: a 2 GiB plain ServerCutText is passed over, not held', () => {
  const s = new ServerCapabilityScanner();
  s.push(Buffer.from('03000000' + '7fffffff', 'hex'));
  for (let i = 0; i < 16; i++) s.push(Buffer.alloc(1024 * 1024));
  assert.equal(s.done, false);
  assert.equal(s.extendedClipboard, false);
});
