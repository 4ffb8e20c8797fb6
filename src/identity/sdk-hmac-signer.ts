/**
 * Huawei `SDK-HMAC-SHA256` request signing (APIG "AK/SK authentication").
 * Used both to verify incoming requests and, by the `console-url` client command, to sign outgoing ones.
 *
 * StringToSign = "SDK-HMAC-SHA256\n" + X-Sdk-Date + "\n" + hex(sha256(CanonicalRequest))
 * CanonicalRequest = method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
 * Signature = hex(HMAC-SHA256(SK, StringToSign)) — no key derivation.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import { sha256Hex as idsSha256Hex } from '../util/ids.js';

export const ALGORITHM = 'SDK-HMAC-SHA256';
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
/** A path of unreserved characters and slashes: its canonical form is itself, either way. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~/]*$/;

/** RFC 3986 unreserved characters stay; everything else becomes upper-case %XX of its UTF-8 bytes. */
export function uriEncode(s: string): string {
  if (UNRESERVED.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const unreserved =
      (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) ||
      byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e;
    out += unreserved ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * Canonical URI of a wire path. `decodeFirst` = Python/Go SDK style (decode each segment, then
 * encode); otherwise Node/Java style (encode the segment as sent, so `%` becomes `%25`).
 * Returns null when `decodeFirst` meets an invalid escape. Always ends in `/`.
 */
export function canonicalUri(path: string, decodeFirst: boolean): string | null {
  // Nothing to decode or encode (every path the API serves, with ids in it): the common case.
  if (PLAIN_PATH.test(path)) return path.endsWith('/') ? path : path + '/';
  const segs: string[] = [];
  for (const seg of path.split('/')) {
    const s = decodeFirst ? safeDecode(seg) : seg;
    if (s === null) return null;
    segs.push(uriEncode(s));
  }
  const joined = segs.join('/');
  return joined.endsWith('/') ? joined : joined + '/';
}

/** Canonical query from a raw query string (without `?`): keys sorted, values of a key sorted. */
export function canonicalQuery(rawQuery: string): string | null {
  if (rawQuery === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = safeDecode(eq === -1 ? part : part.slice(0, eq));
    const v = safeDecode(eq === -1 ? '' : part.slice(eq + 1));
    if (k === null || v === null) return null;
    pairs.push([k, v]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
}

/** `name:value\n` for each signed header: lower-case names in the given (sorted) order, values trimmed. */
export function canonicalHeaders(signed: readonly string[], get: (name: string) => string | undefined): string {
  let out = '';
  for (const name of signed) out += `${name}:${(get(name) ?? '').trim()}\n`;
  return out;
}

export interface CanonicalParts {
  method: string;
  canonicalUri: string;
  canonicalQuery: string;
  canonicalHeaders: string;
  signedHeaders: readonly string[];
  payloadHash: string;
}

export function canonicalRequest(p: CanonicalParts): string {
  return `${p.method.toUpperCase()}\n${p.canonicalUri}\n${p.canonicalQuery}\n${p.canonicalHeaders}\n${p.signedHeaders.join(';')}\n${p.payloadHash}`;
}

/** sha256 as lower-case hex (a string hashed as UTF-8). */
export const sha256Hex: (data: string | Buffer) => string = idsSha256Hex;

export function stringToSign(sdkDate: string, canonical: string): string {
  return `${ALGORITHM}\n${sdkDate}\n${sha256Hex(canonical)}`;
}

export function signature(sk: string | KeyObject, toSign: string): string {
  return signatureBytes(sk, toSign).toString('hex');
}

/** The signature's 32 bytes (what a verifier compares, without a hex round trip). */
export function signatureBytes(sk: string | KeyObject, toSign: string): Buffer {
  return createHmac('sha256', typeof sk === 'string' ? Buffer.from(sk, 'utf8') : sk).update(toSign, 'utf8').digest();
}

/** `YYYYMMDDTHHMMSSZ` for a time in ms. */
export function formatSdkDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

// NOTE: the last date parsed and its value (a pure function's; requests signed in the same
// second carry the same X-Sdk-Date, so most calls are answered from here). No request state.
let lastSdkDate = '';
let lastSdkDateMs: number | null = null;

/** Parses `YYYYMMDDTHHMMSSZ`; null when malformed. */
export function parseSdkDate(s: string): number | null {
  if (s === lastSdkDate) return lastSdkDateMs;
  const t = parseSdkDateOnce(s);
  lastSdkDate = s;
  lastSdkDateMs = t;
  return t;
}

function parseSdkDateOnce(s: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return null;
  return t;
}

export interface ParsedAuthorization {
  ak: string;
  signedHeaders: string[];
  signature: string;
}

/**
 * Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`. Null when malformed.
 * Lengths are bounded so a hostile header cannot make us work hard.
 */
export function parseAuthorization(header: string): ParsedAuthorization | null {
  if (header.length > 4096 || !header.startsWith(ALGORITHM + ' ')) return null;
  // The layout every SDK writes, read in one match; any other goes through the general reading below.
  const sdk = SDK_LAYOUT.exec(header);
  if (sdk) {
    const signedHeaders = sdk[2]!.split(';');
    return validSignedHeaders(signedHeaders) ? { ak: sdk[1]!, signedHeaders, signature: sdk[3]! } : null;
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1) return null;
    const k = part.slice(0, eq).trim();
    if (fields.has(k)) return null;
    fields.set(k, part.slice(eq + 1).trim());
  }
  const ak = fields.get('Access');
  const sh = fields.get('SignedHeaders');
  const sig = fields.get('Signature');
  if (!ak || !sh || !sig || fields.size !== 3) return null;
  if (!/^[A-Za-z0-9]{1,128}$/.test(ak) || !/^[0-9a-f]{64}$/.test(sig)) return null;
  const signedHeaders = sh.split(';');
  return validSignedHeaders(signedHeaders) ? { ak, signedHeaders, signature: sig } : null;
}

/** `Access=..., SignedHeaders=..., Signature=...` in this order, as the SDKs write it (the values as the general reading checks them). */
const SDK_LAYOUT = /^SDK-HMAC-SHA256 Access=([A-Za-z0-9]{1,128}), SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

/** At most 64 names of 1-128 lower-case letters, digits and dashes. */
function validSignedHeaders(names: readonly string[]): boolean {
  return names.length <= 64 && names.every((h) => /^[a-z0-9-]{1,128}$/.test(h));
}

export interface OutgoingRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
}

/**
 * Signs an outgoing request in place (adds `X-Sdk-Date` when missing, `Host`, `Authorization`),
 * signing every header it carries, the way the official Node SDK does.
 */
export function signRequest(req: OutgoingRequest, ak: string, sk: string, nowMs: number): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
  headers['x-sdk-date'] ??= formatSdkDate(nowMs);
  headers['host'] = req.url.host;
  const signed = Object.keys(headers).filter((h) => h !== 'authorization').sort();
  const canon = canonicalRequest({
    method: req.method,
    canonicalUri: canonicalUri(req.url.pathname, false) ?? '/',
    canonicalQuery: canonicalQuery(req.url.search.replace(/^\?/, '')) ?? '',
    canonicalHeaders: canonicalHeaders(signed, (n) => headers[n]),
    signedHeaders: signed,
    payloadHash: headers['x-sdk-content-sha256'] ?? sha256Hex(req.body),
  });
  const sig = signature(sk, stringToSign(headers['x-sdk-date'], canon));
  headers['authorization'] = `${ALGORITHM} Access=${ak}, SignedHeaders=${signed.join(';')}, Signature=${sig}`;
  return headers;
}
