/** Identifiers and random strings from a CSPRNG. */
import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';

/** 32 lower-case hex digits (project, domain and user ids, like Huawei's). */
export function hexId(): string {
  return randomBytes(16).toString('hex');
}

export function uuid(): string {
  return randomUUID();
}

/** `n` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias). */
export function randomString(n: number, alphabet: string): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * One-shot `crypto.hash` (Node 20.12+, 22): about a third of createHash's cost for short inputs (no
 * Hash object per call); createHash where it is missing (Node 20.10, 20.11).
 */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: string | Buffer, encoding: 'hex') => string }).hash;

/** sha256 of a string's UTF-8 bytes, or of bytes, as lower-case hex. */
export const sha256Hex: (data: string | Buffer) => string = oneShot
  ? (data) => oneShot('sha256', data, 'hex')
  : (data) => createHash('sha256').update(data).digest('hex');

/**
 * 32 lower-case hex digits from a CSPRNG, cut from a pooled draw of 4 KiB (one system call per 128
 * ids instead of one each): request ids, which need to be unique and unguessable, not secret.
 */
export function requestId(): string {
  if (idPos >= idPool.length) {
    idPool = randomBytes(4096).toString('hex');
    idPos = 0;
  }
  const id = idPool.slice(idPos, idPos + 32);
  idPos += 32;
  return id;
}
let idPool = '';
let idPos = 0;

export const HEX32 = /^[0-9a-f]{32}$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const UUID_V4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
