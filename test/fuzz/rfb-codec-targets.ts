/**
 * Fuzz targets for the RFB codec (no sockets): the client message framer, both handshakes over a
 * ByteReader, and the small handshake decoders. Every peer-supplied length must be capped before
 * use, every failure must be a typed protocol error, and how the bytes were split must not matter.
 */
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { AuthError, BackendError, ProtocolError } from '../../src/errors.js';
import { ByteReader } from '../../src/rfb/byte-reader.js';
import { clientHandshake } from '../../src/rfb/client-handshake.js';
import { ClientMessageFramer, DEFAULT_MAX_CUT_TEXT_LENGTH, DEFAULT_MAX_ENCODINGS, type ClientMessageFramerOptions } from '../../src/rfb/client-message-framer.js';
import type { ClientMessage } from '../../src/rfb/client-messages.js';
import {
  SERVER_INIT_HEADER_LENGTH, clientVersionFor, decodeServerInitHeader, encodeServerInit, exactRfbVersion, formatVersionNumber,
  parseProtocolVersion, type RfbVersion,
} from '../../src/rfb/handshake-messages.js';
import { PixelConverter, pixelFormatProblem, RGB888_PIXEL_FORMAT } from '../../src/rfb/pixel-format.js';
import { serverHandshake, type ServerSecurityType } from '../../src/rfb/server-handshake.js';
import { CONTROL_CHARS, bytes, cuts, splitAt } from './generators.js';
import { hexFieldCodec, type FuzzTarget } from './runner.js';
import { ACCEPTED_VNC_RESPONSE, clientHandshakeScript, clientMessageStream, serverScript } from './rfb-scripts.js';

/** An internal error wrapped into a ProtocolError's text ("RangeError [ERR_OUT_OF_RANGE]: ...") would mean a missed check. */
const WRAPPED_INTERNAL = /^[A-Z]\w*Error\b/;


// ---- ClientMessageFramer

interface FramerInput {
  opts: ClientMessageFramerOptions;
  stream: Buffer;
  cuts: number[];
}

interface Fed {
  messages: ClientMessage[];
  error: ProtocolError | undefined;
  buffered: number;
}

/** The longest message the framer can be waiting for: what `bufferedLength` must stay below. */
function longestFrame(o: ClientMessageFramerOptions): number {
  const enc = o.maxEncodings ?? DEFAULT_MAX_ENCODINGS;
  const cut = o.maxCutTextLength ?? DEFAULT_MAX_CUT_TEXT_LENGTH;
  // SetEncodings, ClientCutText, SetDesktopSize with 255 screens, Fence with 64 bytes, SetPixelFormat.
  return Math.max(4 + 4 * enc, 8 + cut, 8 + 16 * 255, 9 + 64, 20);
}

function feed(opts: ClientMessageFramerOptions, chunks: Buffer[]): Fed {
  const framer = new ClientMessageFramer(opts);
  const messages: ClientMessage[] = [];
  const bound = longestFrame(opts);
  for (const c of chunks) {
    try {
      messages.push(...framer.push(c));
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `framer threw ${String(e)}`);
      assert.doesNotMatch(e.message, WRAPPED_INTERNAL, 'an internal error escaped a length check');
      // A failed framer stays failed.
      assert.throws(() => framer.push(Buffer.from([4])), (again) => again === e);
      return { messages, error: e, buffered: framer.bufferedLength };
    }
    assert.ok(framer.bufferedLength < bound, `bufferedLength ${framer.bufferedLength} is not below the longest frame ${bound}`);
  }
  return { messages, error: undefined, buffered: framer.bufferedLength };
}

const framerOpts: fc.Arbitrary<ClientMessageFramerOptions> = fc.record({
  maxEncodings: fc.integer({ min: 0, max: 64 }),
  maxCutTextLength: fc.integer({ min: 0, max: 4096 }),
  extensions: fc.boolean(),
  extendedPointerEvents: fc.boolean(),
}, { requiredKeys: ['extensions'] });

export const framerTarget: FuzzTarget<FramerInput> = {
  name: 'client-message-framer',
  arbitrary: fc.record({ opts: framerOpts, stream: clientMessageStream(16), cuts: cuts(16) }),
  codec: hexFieldCodec('stream'),
  boundedRuns: 20000,
  longShare: 0.08,
  caseTimeoutMs: 2000,
  check({ opts, stream, cuts: points }) {
    // Byte by byte is the reference: it decodes every message before a failure.
    const ref = feed(opts, [...stream].map((b) => Buffer.from([b])));
    for (const chunks of [[stream], splitAt(stream, points)]) {
      const got = feed(opts, chunks);
      assert.equal(got.error?.message, ref.error?.message, 'the same error whatever the split');
      // A chunk that fails drops the messages it completed: delivered messages are a prefix of the reference.
      assert.ok(got.messages.length <= ref.messages.length);
      got.messages.forEach((m, i) => {
        assert.equal(m.type, ref.messages[i]!.type);
        assert.ok(m.raw.equals(ref.messages[i]!.raw), `message ${i} differs`);
      });
      if (!ref.error) {
        assert.equal(got.messages.length, ref.messages.length, 'the same messages whatever the split');
        assert.equal(got.buffered, ref.buffered);
      }
    }
    if (!ref.error) {
      const consumed = ref.messages.reduce((n, m) => n + m.raw.length, 0);
      assert.ok(Buffer.concat(ref.messages.map((m) => m.raw)).equals(stream.subarray(0, consumed)), 'raw bytes are the stream, in order');
      assert.equal(consumed + ref.buffered, stream.length);
    }
    return ref.error ? `refused: ${ref.error.message.replace(/\d+/g, 'N')}` : ref.messages.length ? 'messages' : 'incomplete';
  },
};

// ---- handshakes over a ByteReader

type Settled<R> = { ok: true; value: R; written: number; reader: ByteReader } | { ok: false; error: unknown; written: number; reader: ByteReader };

/** The reason a stalled peer's handshake is aborted with. */
const STALLED = new Error('fuzz: the peer stopped sending');

/**
 * Pushes `chunks` into a reader (letting the handshake run between them), then ends the reader
 * (peer closed) or aborts the signal (peer stalled). Fails if the handshake is still pending after that.
 */
async function drive<R>(chunks: Buffer[], closed: boolean, run: (reader: ByteReader, write: (b: Buffer) => void, signal: AbortSignal) => Promise<R>): Promise<Settled<R>> {
  const reader = new ByteReader({ maxReadLength: 64 * 1024 });
  const ac = new AbortController();
  let written = 0;
  let settled: Settled<R> | undefined;
  run(reader, (b) => void (written += b.length), ac.signal).then(
    (value) => void (settled = { ok: true, value, written, reader }),
    (error: unknown) => void (settled = { ok: false, error, written, reader }),
  );
  for (const c of chunks) {
    reader.push(c);
    await tick();
  }
  if (closed) reader.end();
  else ac.abort(STALLED);
  for (let i = 0; i < 5 && !settled; i++) await tick();
  assert.ok(settled, 'the handshake neither finished nor failed after the peer closed or stalled');
  return settled;
}

function outcomeKey(s: Settled<unknown>): string {
  if (s.ok) return `ok ${JSON.stringify(s.value)} rest ${s.reader.bufferedLength}`;
  const e = s.error as Error & { code?: string };
  return `${e.constructor.name} ${e.code ?? ''} ${e.message}`;
}

interface ClientHandshakeInput {
  server: Buffer;
  cuts: number[];
  closed: boolean;
  password: boolean;
  maxVersion: RfbVersion;
}

const versions: RfbVersion[] = ['3.3', '3.7', '3.8'];

export const clientHandshakeTarget: FuzzTarget<ClientHandshakeInput> = {
  name: 'client-handshake',
  arbitrary: fc.record({ server: serverScript, cuts: cuts(8), closed: fc.boolean(), password: fc.boolean(), maxVersion: fc.constantFrom(...versions) }),
  codec: hexFieldCodec('server'),
  boundedRuns: 15000,
  longShare: 0.08,
  caseTimeoutMs: 3000,
  async check(input) {
    const run = (chunks: Buffer[]) => drive(chunks, input.closed, (reader, write, signal) =>
      clientHandshake(reader, write, { ...(input.password ? { password: 'secret' } : {}), maxVersion: input.maxVersion, signal }));
    const whole = await run([input.server]);
    const split = await run(splitAt(input.server, input.cuts));
    assert.equal(outcomeKey(split), outcomeKey(whole), 'the same outcome whatever the split');
    // ProtocolVersion (12) + security type (1) + VNC auth response (16) + ClientInit (1).
    assert.ok(whole.written <= 30, `client wrote ${whole.written} bytes`);
    if (whole.ok) {
      const r = whole.value;
      assert.ok(versions.includes(r.version));
      assert.ok(r.securityType === 1 || (r.securityType === 2 && input.password), `security type ${r.securityType}`);
      assert.doesNotMatch(r.serverInit.name, CONTROL_CHARS, 'desktop name is sanitized');
      assert.equal(pixelFormatProblem(r.serverInit.pixelFormat), undefined);
      return `ok ${r.version} type ${r.securityType}`;
    }
    const e = whole.error;
    assert.ok(e instanceof BackendError, `rejected with ${String(e)}`);
    assert.doesNotMatch(e.message, CONTROL_CHARS, 'peer text in an error message is sanitized');
    // Only an abort may read as "unreachable": anything else there would be an internal error in disguise.
    if (e.code === 'BACKEND_UNREACHABLE') assert.equal((e.cause as unknown), STALLED, `unreachable without a stall: ${e.message} (${String(e.cause)})`);
    // Our own caps come first: the reader's 64 KiB limit must never be what stops a length.
    assert.doesNotMatch(String((e.cause as Error | undefined)?.message ?? ''), /^read of \d+ bytes exceeds/);
    return `rejected ${e.code}`;
  },
};

interface ServerNegotiateInput {
  client: Buffer;
  cuts: number[];
  closed: boolean;
  version: RfbVersion;
  securityTypes: ServerSecurityType[];
}

export const serverNegotiateTarget: FuzzTarget<ServerNegotiateInput> = {
  name: 'server-negotiate',
  arbitrary: fc.record({
    client: clientHandshakeScript, cuts: cuts(8), closed: fc.boolean(), version: fc.constantFrom(...versions),
    securityTypes: fc.shuffledSubarray([1, 2] as ServerSecurityType[], { minLength: 1 }),
  }),
  codec: hexFieldCodec('client'),
  boundedRuns: 15000,
  longShare: 0.06,
  caseTimeoutMs: 3000,
  async check(input) {
    const run = (chunks: Buffer[]) => drive(chunks, input.closed, (reader, write, signal) => serverHandshake(reader, write, {
      version: input.version, securityTypes: input.securityTypes, verifyVncAuth: (_c, r) => r.equals(ACCEPTED_VNC_RESPONSE), signal,
    }));
    const whole = await run([input.client]);
    const split = await run(splitAt(input.client, input.cuts));
    assert.equal(outcomeKey(split), outcomeKey(whole), 'the same outcome whatever the split');
    // Version (12) + types (3) + challenge (16) + SecurityResult with a reason of at most 256 bytes.
    assert.ok(whole.written <= 12 + 3 + 16 + 8 + 256, `server wrote ${whole.written} bytes`);
    if (whole.ok) {
      const r = whole.value;
      assert.ok(input.securityTypes.includes(r.securityType));
      if (r.version === '3.3') assert.equal(r.securityType, input.securityTypes[0]);
      assert.ok(versions.indexOf(r.version) <= versions.indexOf(input.version), 'client got a version above ours');
      return `ok ${r.version} type ${r.securityType}`;
    }
    const e = whole.error;
    if (e === STALLED) return 'stalled';
    assert.ok(e instanceof ProtocolError || (e instanceof AuthError && e.code === 'AUTH_INVALID'), `rejected with ${String(e)}`);
    assert.doesNotMatch(e.message, CONTROL_CHARS);
    return `rejected ${e.constructor.name}`;
  },
};

// ---- small decoders

export const protocolVersionTarget: FuzzTarget<Buffer> = {
  name: 'protocol-version',
  arbitrary: fc.oneof(
    bytes(16),
    fc.tuple(fc.stringMatching(/^RFB [0-9]{3}\.[0-9]{3}\n$/), fc.nat(11), fc.integer({ min: 0, max: 255 })).map(([s, i, b]) => {
      const buf = Buffer.from(s, 'latin1');
      buf[i] = b;
      return buf;
    }),
    fc.stringMatching(/^RFB [0-9]{3}\.[0-9]{3}\n$/).map((s) => Buffer.from(s, 'latin1')),
    fc.constantFrom('003.003', '003.007', '003.008', '003.889', '004.000', '002.000', '000.000').map((v) => Buffer.from(`RFB ${v}\n`, 'latin1')),
  ),
  codec: { ext: 'hex', decode: (b) => b, encode: (b) => b },
  boundedRuns: 20000,
  longShare: 0.02,
  caseTimeoutMs: 1000,
  check(buf) {
    let v;
    try {
      v = parseProtocolVersion(buf);
    } catch (e) {
      assert.ok(e instanceof ProtocolError, String(e));
      // describeBytes shows at most 16 escaped bytes: a bounded, printable message.
      assert.doesNotMatch(e.message, CONTROL_CHARS);
      assert.ok(e.message.length < 120, e.message);
      return 'refused';
    }
    assert.equal(`RFB ${formatVersionNumber(v)}\n`, buf.toString('latin1'), 'accepted bytes are exactly what they parse to');
    try {
      const used = clientVersionFor(v);
      if (v.major === 3) assert.equal(used, exactRfbVersion(v) ?? '3.3');
      else assert.equal(used, '3.8');
      return exactRfbVersion(v) ? `exact ${used}` : `other -> ${used}`;
    } catch (e) {
      assert.ok(e instanceof ProtocolError && v.major < 3, String(e));
      return 'major < 3';
    }
  },
};

export const serverInitTarget: FuzzTarget<Buffer> = {
  name: 'server-init-header',
  arbitrary: fc.oneof(
    bytes(40),
    fc.uint8Array({ minLength: 24, maxLength: 40 }).map((a) => Buffer.from(a)),
    fc.record({ width: fc.nat(0xffff), height: fc.nat(0xffff), name: fc.string({ unit: 'binary', maxLength: 1100 }) })
      .map((i) => encodeServerInit({ ...i, pixelFormat: RGB888_PIXEL_FORMAT })),
  ),
  codec: { ext: 'hex', decode: (b) => b, encode: (b) => b },
  boundedRuns: 20000,
  longShare: 0.02,
  caseTimeoutMs: 1000,
  check(buf) {
    if (buf.length < SERVER_INIT_HEADER_LENGTH) {
      // Documented: the caller reads exactly 24 bytes first; a short buffer is a RangeError, not a misread.
      assert.throws(() => decodeServerInitHeader(buf), RangeError);
      return 'short';
    }
    const h = decodeServerInitHeader(buf);
    assert.equal(h.width, buf.readUInt16BE(0));
    assert.equal(h.height, buf.readUInt16BE(2));
    assert.equal(h.nameLength, buf.readUInt32BE(20));
    const problem = pixelFormatProblem(h.pixelFormat);
    if (problem !== undefined) return 'bad pixel format';
    if (h.pixelFormat.trueColour) {
      // A format that passed the check can be used for real.
      const conv = new PixelConverter(h.pixelFormat);
      const px = Buffer.alloc(conv.bytesPerPixel);
      for (const rgb of [0, 0xffffff, 0x123456]) {
        conv.write(px, 0, conv.pack(rgb));
        conv.unpack(conv.read(px, 0));
      }
    }
    return 'ok';
  },
};
