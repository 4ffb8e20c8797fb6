/**
 * Fuzz targets for the pure parsers of SDK-HMAC-SHA256 verification: they see every header and
 * request target a caller sends, before any authentication.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AuthError } from '../../src/errors.js';
import {
  ALGORITHM, canonicalHeaders, canonicalQuery, canonicalRequest, canonicalUri, formatSdkDate, parseAuthorization, parseSdkDate,
  sha256Hex, signature, stringToSign,
} from '../../src/identity/sdk-hmac-signer.js';
import type { SignerEnv } from './fuzz-env.js';
import { bytes, hostileString, utf16Text } from './generators.js';
import type { CorpusCodec, FuzzTarget } from './runner.js';

const stringCodec: CorpusCodec<string> = {
  ext: 'json',
  decode: (v) => {
    assert.equal(typeof v, 'string');
    return v as string;
  },
  encode: (s) => s,
};

/** RFC 3986 unreserved characters and upper-case %XX: the only things a canonical form may hold. */
const ENCODED = '(?:[A-Za-z0-9\\-._~]|%[0-9A-F]{2})*';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function decodes(s: string): boolean {
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

// ---- Authorization

const ak = fc.oneof(fc.stringMatching(/^[A-Z0-9]{20}$/), hostileString(40), fc.constant('A'.repeat(129)));
const hex64 = fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.stringMatching(/^[0-9a-fA-F]{63,65}$/), hostileString(70));
const signedList = fc.oneof(
  fc.array(fc.constantFrom('content-type', 'host', 'x-sdk-date', 'x-project-id', 'user-agent'), { minLength: 1, maxLength: 6 }).map((a) => a.join(';')),
  fc.array(fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,8}$/), hostileString(10)), { maxLength: 70 }).map((a) => a.join(';')),
);
const fieldName = fc.oneof(fc.constantFrom('Access', 'SignedHeaders', 'Signature', ' Access', 'Signature ', 'access', 'Extra'), hostileString(12));
const field = fc.oneof(
  fc.tuple(fc.constant('Access'), ak),
  fc.tuple(fc.constant('SignedHeaders'), signedList),
  fc.tuple(fc.constant('Signature'), hex64),
  fc.tuple(fieldName, hostileString(30)),
);
/** A header the SDK could have written, fields in any order, spacing varied. */
const wellFormed = fc.tuple(
  fc.stringMatching(/^[A-Za-z0-9]{1,128}$/),
  fc.array(fc.stringMatching(/^[a-z0-9-]{1,16}$/), { minLength: 1, maxLength: 64 }).map((a) => a.join(';')),
  fc.stringMatching(/^[0-9a-f]{64}$/),
).chain(([a, sh, sig]) => fc.tuple(
  fc.shuffledSubarray([`Access=${a}`, `SignedHeaders=${sh}`, `Signature=${sig}`], { minLength: 3 }),
  fc.constantFrom(', ', ',', ' ,  '),
).map(([fields, sep]) => `${ALGORITHM} ${fields.join(sep)}`));

/** Authorization headers: well formed, near misses and junk. */
export const authorizationHeader = fc.oneof(
  { arbitrary: wellFormed, weight: 2 },
  { arbitrary: hostileString(200), weight: 1 },
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.constantFrom(`${ALGORITHM} `, ALGORITHM, `${ALGORITHM}  `, 'sdk-hmac-sha256 ', 'SDK-HMAC-SHA1 ', ''),
      fc.array(field, { minLength: 0, maxLength: 5 }),
      fc.constantFrom(', ', ',', ' , ', ',,', '; '),
      fc.constantFrom('=', ' = ', '=='),
    ).map(([prefix, fields, sep, eq]) => prefix + fields.map(([k, v]) => `${k}${eq}${v}`).join(sep)),
  },
  { arbitrary: fc.integer({ min: 4000, max: 4200 }).map((n) => `${ALGORITHM} Access=${'A'.repeat(n)}`), weight: 1 },
);

export const authorizationTarget: FuzzTarget<string> = {
  name: 'sdk-authorization',
  arbitrary: authorizationHeader,
  codec: stringCodec,
  boundedRuns: 20000,
  longShare: 0.03,
  caseTimeoutMs: 1000,
  check(header) {
    const p = parseAuthorization(header);
    if (p === null) return 'refused';
    assert.ok(header.length <= 4096 && header.startsWith(`${ALGORITHM} `), 'accepted an over-long or foreign header');
    assert.match(p.ak, /^[A-Za-z0-9]{1,128}$/);
    assert.match(p.signature, /^[0-9a-f]{64}$/);
    assert.ok(p.signedHeaders.length >= 1 && p.signedHeaders.length <= 64);
    for (const h of p.signedHeaders) assert.match(h, /^[a-z0-9-]{1,128}$/);
    // What was accepted means the same once written out the way the SDK writes it.
    assert.deepEqual(parseAuthorization(`${ALGORITHM} Access=${p.ak}, SignedHeaders=${p.signedHeaders.join(';')}, Signature=${p.signature}`), p);
    return 'parsed';
  },
};

// ---- CanonicalQuery

const queryPart = fc.oneof(
  hostileString(20),
  hostileString(20).map((s) => encodeURIComponent(s.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\ufffd'))),
  fc.constantFrom('limit', 'offset', 'status', 'name', '%41', '%e9', '%C3%A9', '%ED%A0%80', '%F0%9F%98%80', '+', '%2B', '%26', '%3D'),
);
const rawQuery = fc.oneof(
  hostileString(200),
  fc.array(fc.tuple(queryPart, fc.option(queryPart)), { maxLength: 8 }).chain((pairs) =>
    fc.constantFrom('&', '&&', '&;').map((sep) => pairs.map(([k, v]) => (v === null ? k : `${k}=${v}`)).join(sep))),
);

export const canonicalQueryTarget: FuzzTarget<string> = {
  name: 'sdk-canonical-query',
  arbitrary: rawQuery,
  codec: stringCodec,
  boundedRuns: 20000,
  longShare: 0.03,
  caseTimeoutMs: 1000,
  check(raw) {
    const out = canonicalQuery(raw);
    const parts = raw.split('&').filter((p) => p !== '');
    const splitPart = (p: string): [string, string] => (p.includes('=') ? [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] : [p, '']);
    const valid = parts.every((p) => splitPart(p).every(decodes));
    assert.equal(out !== null, valid, `null exactly when an escape is invalid (got ${JSON.stringify(out)})`);
    if (out === null) return 'refused';
    if (parts.length === 0) {
      assert.equal(out, '');
      return 'empty';
    }
    assert.match(out, new RegExp(`^${ENCODED}=${ENCODED}(?:&${ENCODED}=${ENCODED})*$`), 'canonical query holds only encoded pairs');
    assert.equal(out.split('&').length, parts.length, 'one pair per non-empty part');
    // A lone surrogate is encoded as U+FFFD, which may sort elsewhere: order and idempotence hold for
    // real text (a request target from the wire is Latin-1 anyway).
    if (!LONE_SURROGATE.test(raw)) {
      const keys = out.split('&').map((p) => decodeURIComponent(p.slice(0, p.indexOf('='))));
      for (let i = 1; i < keys.length; i++) assert.ok(keys[i - 1]! <= keys[i]!, 'keys sorted');
      assert.equal(canonicalQuery(out), out, 'canonical form is a fixed point');
    }
    return 'canonical';
  },
};

// ---- CanonicalURI

const pathArb = fc.oneof(
  hostileString(300),
  fc.array(fc.oneof(queryPart, fc.constantFrom('v1', 'cloudservers', 'remote_console', '', '.', '..')), { maxLength: 8 }).map((segs) => '/' + segs.join('/')),
);

export const canonicalUriTarget: FuzzTarget<{ path: string; decodeFirst: boolean }> = {
  name: 'sdk-canonical-uri',
  arbitrary: fc.record({ path: pathArb, decodeFirst: fc.boolean() }),
  codec: {
    ext: 'json',
    decode: (v) => v as { path: string; decodeFirst: boolean },
    encode: (i) => i,
  },
  boundedRuns: 20000,
  longShare: 0.03,
  caseTimeoutMs: 1000,
  check({ path, decodeFirst }) {
    const out = canonicalUri(path, decodeFirst);
    const valid = !decodeFirst || path.split('/').every(decodes);
    assert.equal(out !== null, valid, 'null exactly when decoding first meets an invalid escape');
    if (out === null) return 'refused';
    assert.match(out, new RegExp(`^(?:${ENCODED}/)*$`), 'encoded segments, ending in /');
    const slashes = (s: string): number => s.split('/').length - 1;
    // Decoding first turns %2F into a slash inside a segment, and encoding turns it back: segments never merge or split.
    assert.equal(slashes(out), slashes(path) + (path.endsWith('/') ? 0 : 1), 'segment count kept');
    if (!path.includes('%')) assert.equal(canonicalUri(path, !decodeFirst), out, 'both SDK styles agree without escapes');
    if (decodeFirst && !LONE_SURROGATE.test(path)) assert.equal(canonicalUri(out, true), out, 'canonical form is a fixed point');
    return decodeFirst ? 'decoded-first' : 'as-sent';
  },
};

// ---- X-Sdk-Date

const validDate = fc.date({ min: new Date(Date.UTC(1, 0, 1)), max: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)), noInvalidDate: true }).map((d) => formatSdkDate(Math.floor(d.getTime() / 1000) * 1000));
const sdkDate = fc.oneof(
  validDate,
  // One character of a valid date replaced: off-by-one fields, letters, separators.
  fc.tuple(validDate, fc.nat(15), fc.constantFrom('0', '1', '2', '3', '6', '9', 'T', 'Z', ' ', '-', ':', 'x', '\u0663')).map(([d, i, c]) => d.slice(0, i) + c + d.slice(i + 1)),
  fc.stringMatching(/^\d{4}(0[0-9]|1[0-3])([0-3][0-9])T([0-2][0-9])([0-6][0-9])([0-6][0-9])Z$/),
  hostileString(40),
  utf16Text(20),
);

/** The instant `s` names when it is a real UTC date-time written as YYYYMMDDTHHMMSSZ (an independent oracle). */
function oracle(s: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return null;
  const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(t) || formatSdkDate(t) !== s ? null : t;
}

export const sdkDateTarget: FuzzTarget<string> = {
  name: 'sdk-date',
  arbitrary: sdkDate,
  codec: stringCodec,
  boundedRuns: 20000,
  longShare: 0.02,
  caseTimeoutMs: 1000,
  check(s) {
    const t = parseSdkDate(s);
    const expected = oracle(s);
    if (t !== null) {
      assert.equal(t, expected, 'an accepted date is the instant it names');
      return 'accepted';
    }
    // NOTE: years 0000-0099 are refused (Date.UTC maps them to 19xx); they are centuries outside
    // any skew window, so a refusal is the right answer anyway.
    if (expected !== null) assert.ok(new Date(expected).getUTCFullYear() < 100, `a real date was refused: ${s}`);
    return expected === null ? 'refused' : 'refused (year < 100)';
  },
};

// ---- The signature binds the body

/**
 * How a signer used X-Sdk-Content-Sha256: absent; signed, holding the body's hash (either case),
 * UNSIGNED-PAYLOAD or something else; or added unsigned (by whoever replays the request), holding
 * the signed body's hash, the sent body's hash, UNSIGNED-PAYLOAD or junk.
 */
const CONTENT_SHA_USES = [
  'absent', 'signed-hash', 'signed-hash-upper', 'signed-unsigned-payload', 'signed-junk',
  'unsigned-hash-of-signed', 'unsigned-hash-of-sent', 'unsigned-unsigned-payload', 'unsigned-junk',
] as const;

export interface BodyCase {
  method: string;
  /** Path and query as sent. */
  target: string;
  /** The body the signer signed. */
  signed: Buffer;
  /** The body sent instead (never equal to `signed`). */
  sent: Buffer;
  contentSha: (typeof CONTENT_SHA_USES)[number];
}

const jsonBody = fc.oneof(
  fc.constant('{"os-start":{"servers":[{"id":"b7a1c3e2-4f5d-4e6a-9b8c-1d2e3f4a5b6c"}]}}'),
  fc.constant('{"remote_console":{"type":"novnc","protocol":"vnc"}}'),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
).map((t) => Buffer.from(t, 'utf8'));
const someBody = fc.oneof({ weight: 4, arbitrary: jsonBody }, { weight: 1, arbitrary: bytes(64) }, { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) });
/** Another body: one byte changed, bytes added or cut, whitespace, another document, nothing. */
const otherBody = (b: Buffer): fc.Arbitrary<Buffer> => fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
    if (b.length === 0) return Buffer.from([x]);
    const c = Buffer.from(b);
    c[i % c.length] = c[i % c.length]! ^ x;
    return c;
  }),
  bytes(8).map((extra) => Buffer.concat([b, extra, Buffer.from(' ')])),
  fc.nat().map((n) => b.subarray(0, b.length === 0 ? 0 : n % b.length)),
  fc.constant(Buffer.concat([Buffer.from(' '), b])),
  someBody,
).map((o) => (o.equals(b) ? Buffer.concat([o, Buffer.from('\n')]) : o));

export const bodyCaseArbitrary: fc.Arbitrary<BodyCase> = fc.record({
  method: fc.constantFrom('POST', 'PUT', 'GET', 'DELETE'),
  target: fc.constantFrom('/v1/0605767a3300d5762fb7c0186d9e1779/cloudservers/action', '/v1/p/cloudservers/s/remote_console', '/v1/p/cloudservers/detail?limit=1&name=a%20b', '/'),
  signed: someBody,
  contentSha: fc.constantFrom(...CONTENT_SHA_USES),
}).chain((c) => otherBody(c.signed).map((sent) => ({ ...c, sent })));

/**
 * The verifier against requests whose body is not the one signed, signed the way each signer
 * could (every use of X-Sdk-Content-Sha256), with the same signed request sent with its own body as
 * a control. Property: a request whose body is not the signed one never verifies, except a
 * bodiless one under a signature that waived the body (a signed UNSIGNED-PAYLOAD covers no body);
 * and the control verifies exactly when it should.
 */
export function bodyBindingTarget(env: SignerEnv): FuzzTarget<BodyCase> {
  let n = 0;
  return {
    name: 'sdk-body-binding',
    arbitrary: bodyCaseArbitrary,
    codec: {
      ext: 'json',
      decode: (v) => {
        const o = v as Record<string, unknown>;
        return { ...(o as unknown as BodyCase), signed: Buffer.from(String(o['signed']), 'hex'), sent: Buffer.from(String(o['sent']), 'hex') };
      },
      encode: (c) => ({ ...c, signed: c.signed.toString('hex'), sent: c.sent.toString('hex') }),
    },
    boundedRuns: 3000,
    longShare: 0.02,
    caseTimeoutMs: 2000,
    async check(c) {
      const date = formatSdkDate(Date.now());
      const headers: Record<string, string> = { host: 'ecs.example.com', 'x-sdk-date': date, 'content-type': 'application/json' };
      const use = c.contentSha;
      const claimed = use === 'signed-hash' || use === 'unsigned-hash-of-signed' ? sha256Hex(c.signed)
        : use === 'signed-hash-upper' ? sha256Hex(c.signed).toUpperCase()
        : use === 'unsigned-hash-of-sent' ? sha256Hex(c.sent)
        : use === 'signed-unsigned-payload' || use === 'unsigned-unsigned-payload' ? 'UNSIGNED-PAYLOAD'
        : use === 'absent' ? null : 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85x';
      const isSigned = use.startsWith('signed-');
      if (claimed !== null && isSigned) headers['x-sdk-content-sha256'] = claimed;
      const signedNames = Object.keys(headers).sort();
      const q = c.target.indexOf('?');
      const canon = canonicalRequest({
        method: c.method, canonicalUri: canonicalUri(q === -1 ? c.target : c.target.slice(0, q), false)!,
        canonicalQuery: canonicalQuery(q === -1 ? '' : c.target.slice(q + 1))!, canonicalHeaders: canonicalHeaders(signedNames, (h) => headers[h]),
        signedHeaders: signedNames, payloadHash: isSigned ? claimed! : sha256Hex(c.signed),
      });
      headers['authorization'] = `${ALGORITHM} Access=${env.ak}, SignedHeaders=${signedNames.join(';')}, Signature=${signature(env.sk, stringToSign(date, canon))}`;
      // Whoever replays the request may add an unsigned header.
      if (claimed !== null && !isSigned) headers['x-sdk-content-sha256'] = claimed;
      n++;
      const sourceAddress = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      const verifies = async (body: Buffer): Promise<boolean> => {
        try {
          await env.services.identity.verifySignedRequest({ method: c.method, url: c.target, header: (h) => headers[h], body, sourceAddress, requestId: null });
          return true;
        } catch (e) {
          assert.ok(e instanceof AuthError, `not an authentication error: ${String(e)}`);
          return false;
        }
      };
      const waived = use === 'signed-unsigned-payload';
      assert.equal(await verifies(c.sent), waived && c.sent.length === 0, 'a body that is not the signed one verified');
      // The control: its own body, which verifies unless the signer's claim is wrong for it.
      const controlOk = !(use === 'signed-junk' || (waived && c.signed.length > 0));
      assert.equal(await verifies(c.signed), controlOk, 'the signed request with its own body');
      return `${use}: ${controlOk ? 'control verified' : 'control refused'}`;
    },
  };
}
