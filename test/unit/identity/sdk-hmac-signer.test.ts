import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  canonicalHeaders, canonicalQuery, canonicalRequest, canonicalUri, formatSdkDate, parseAuthorization,
  parseSdkDate, sha256Hex, signRequest, signature, stringToSign, uriEncode,
} from '../../../src/identity/sdk-hmac-signer.js';

// The contract's vector, made by the official SDK's signer.
const AK = 'TESTAK0123456789ABCD';
const SK = 'testSecretKey0123456789abcdefghijklmnopqr';
const PATH = '/v1/0605767a3300d5762fb7c0186d9e1779/cloudservers/b7a1c3e2-4f5d-4e6a-9b8c-1d2e3f4a5b6c/remote_console';
const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';
const HEADERS: Record<string, string> = {
  'content-type': 'application/json',
  host: 'ecs.cn-north-4.myhuaweicloud.com',
  'x-project-id': '0605767a3300d5762fb7c0186d9e1779',
  'x-sdk-date': '20260101T000000Z',
};

test('contract signing vector', () => {
  assert.equal(sha256Hex(BODY), 'a4c539292f8288397ce2b2152486fbb5a36064288cdba2542f497cf4cb0dfdab');
  const signed = ['content-type', 'host', 'x-project-id', 'x-sdk-date'];
  const canon = canonicalRequest({
    method: 'POST',
    canonicalUri: canonicalUri(PATH, false)!,
    canonicalQuery: '',
    canonicalHeaders: canonicalHeaders(signed, (n) => HEADERS[n]),
    signedHeaders: signed,
    payloadHash: sha256Hex(BODY),
  });
  assert.equal(signature(SK, stringToSign('20260101T000000Z', canon)), '0e27809b1445b7df3bba1262c45eeece78af64f296acdabed9e3299a7c4d2d28');
});

test('signRequest reproduces the vector', () => {
  const h = signRequest(
    { method: 'POST', url: new URL('https://ecs.cn-north-4.myhuaweicloud.com' + PATH), headers: { 'Content-Type': 'application/json', 'X-Project-Id': '0605767a3300d5762fb7c0186d9e1779', 'X-Sdk-Date': '20260101T000000Z' }, body: BODY },
    AK, SK, 0,
  );
  assert.equal(h['authorization'], `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=0e27809b1445b7df3bba1262c45eeece78af64f296acdabed9e3299a7c4d2d28`);
});

test('canonical URI: both encodings, trailing slash', () => {
  assert.equal(canonicalUri('/v1/a b', false), '/v1/a%20b/');
  assert.equal(canonicalUri('/v1/%7Bproject_id%7D/x', false), '/v1/%257Bproject_id%257D/x/');
  assert.equal(canonicalUri('/v1/%7Bproject_id%7D/x', true), '/v1/%7Bproject_id%7D/x/');
  assert.equal(canonicalUri('/v1/%zz', true), null);
  assert.equal(canonicalUri('/', false), '/');
});

test('canonical URI of plain paths (the shortcut) is what the segment-wise encoding gives', () => {
  // The encoding spelled out: each segment (decoded first, or not) percent-encoded, a slash at the end.
  const reference = (path: string, decodeFirst: boolean): string => {
    const joined = path.split('/').map((seg) => uriEncode(decodeFirst ? decodeURIComponent(seg) : seg)).join('/');
    return joined.endsWith('/') ? joined : `${joined}/`;
  };
  for (const p of ['', '/', '//', '/v1/abc-DEF_0.9~/cloudservers/7f3e/remote_console', '/v1/a//b/', 'no-slash', '/v1/x y', '/v1/%41', '/v1/é']) {
    for (const decodeFirst of [false, true]) assert.equal(canonicalUri(p, decodeFirst), reference(p, decodeFirst), `${p} ${decodeFirst}`);
  }
});

test('uriEncode keeps unreserved, upper-cases escapes, encodes UTF-8', () => {
  assert.equal(uriEncode('aZ09-._~'), 'aZ09-._~');
  assert.equal(uriEncode('a/b+c=d'), 'a%2Fb%2Bc%3Dd');
  assert.equal(uriEncode('é'), '%C3%A9');
});

test('canonical query sorts keys and values', () => {
  assert.equal(canonicalQuery(''), '');
  assert.equal(canonicalQuery('b=2&a=1&a=0&c'), 'a=0&a=1&b=2&c=');
  assert.equal(canonicalQuery('x=%20y'), 'x=%20y');
  assert.equal(canonicalQuery('x=%E0%A4%A'), null);
});

test('sdk date format and parse', () => {
  assert.equal(formatSdkDate(Date.UTC(2026, 0, 2, 3, 4, 5)), '20260102T030405Z');
  assert.equal(parseSdkDate('20260102T030405Z'), Date.UTC(2026, 0, 2, 3, 4, 5));
  for (const bad of ['', '2026-01-02T03:04:05Z', '20261302T030405Z', '20260230T000000Z', '20260102T250405Z', '20260102T030405']) {
    assert.equal(parseSdkDate(bad), null, bad);
  }
});

test('parseSdkDate answers the same for a date asked again, between other dates and malformed ones', () => {
  for (const [d, want] of [
    ['20260102T030405Z', Date.UTC(2026, 0, 2, 3, 4, 5)], ['20260102T030405Z', Date.UTC(2026, 0, 2, 3, 4, 5)], ['20260230T000000Z', null],
    ['20260230T000000Z', null], ['20260102T030405Z', Date.UTC(2026, 0, 2, 3, 4, 5)], ['20260102T030406Z', Date.UTC(2026, 0, 2, 3, 4, 6)],
    ['', null], ['20260102T030406Z', Date.UTC(2026, 0, 2, 3, 4, 6)],
  ] as const) assert.equal(parseSdkDate(d), want, d);
});

test('parseAuthorization reads the SDK layout as it reads the same fields in any order and spacing', () => {
  // Mostly valid values, and odd ones: empty, too long, wrong characters, spaces, separators.
  const mostly = <T>(good: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: odd });
  const name = fc.stringMatching(/^[a-z0-9-]{0,4}$|^[A-Za-z0-9;]{1,3}$|^[a-z]{127,129}$/);
  let accepted = 0;
  fc.assert(fc.property(
    mostly(fc.stringMatching(/^[A-Za-z0-9]{1,24}$/), fc.stringMatching(/^[A-Za-z0-9]{0,130}$|^[A-Za-z0-9 ]{1,5}$/)),
    mostly(fc.array(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 6 }), fc.array(name, { maxLength: 66 })),
    mostly(fc.stringMatching(/^[0-9a-f]{64}$/), fc.stringMatching(/^[0-9a-f]{63,65}$|^[0-9A-F]{64}$/)), fc.constantFrom(' ', '  ', ''), fc.boolean(),
    (ak, names, sig, space, reorder) => {
      const sh = names.join(';');
      const sdk = parseAuthorization(`SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=${sh}, Signature=${sig}`);
      const parts = [`Access=${ak}`, `SignedHeaders=${sh}`, `Signature=${sig}`];
      const other = parseAuthorization(`SDK-HMAC-SHA256 ${(reorder ? [parts[2], parts[0], parts[1]] : parts).join(`${space},${space}`)}`);
      assert.deepEqual(sdk, other);
      if (sdk) assert.deepEqual(sdk, { ak: ak.trim(), signedHeaders: sh.split(';'), signature: sig });
      if (sdk) accepted++;
    },
  ), { numRuns: 3000 });
  assert.ok(accepted >= 1000, `valid headers were among those tried (${accepted})`);
});

test('parseAuthorization accepts the SDK form and rejects odd ones', () => {
  const ok = parseAuthorization(`SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=content-type;host, Signature=${'a'.repeat(64)}`);
  assert.deepEqual(ok, { ak: AK, signedHeaders: ['content-type', 'host'], signature: 'a'.repeat(64) });
  for (const bad of [
    '', 'Bearer x', 'SDK-HMAC-SHA256', 'SDK-HMAC-SHA256 Access=', `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=host`,
    `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=host, Signature=xyz`,
    `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=Host, Signature=${'a'.repeat(64)}`,
    `SDK-HMAC-SHA256 Access=${AK}, Access=${AK}, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
    `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=host, Signature=${'a'.repeat(64)}, Extra=1`,
    'SDK-HMAC-SHA256 ' + 'x'.repeat(5000),
  ]) {
    assert.equal(parseAuthorization(bad), null, bad);
  }
});
