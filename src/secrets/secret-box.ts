/**
 * Encryption at rest for secret keys and backend VNC passwords: AES-256-GCM under the master key.
 * Stored form: `v1:<base64 iv>:<base64 tag>:<base64 ciphertext>`. The associated data binds a
 * ciphertext to its row (e.g. the AK), so a value copied to another row does not decrypt.
 *
 * A box holds a key ring: the first key seals, every key opens. One key is the usual case; two
 * while the master key is rotated (docs/deploy.md, "Rotating the master key"), so that a secret
 * sealed with either key opens on every node.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { ConsoleError } from '../errors.js';

interface RingKey {
  readonly key: Buffer;
  readonly id: string;
}

/**
 * Names a key without revealing it: the first 16 hex digits of HMAC-SHA256(key, a fixed label).
 * Messages and logs show it so that operators can tell keys apart.
 */
export function masterKeyId(key: Buffer): string {
  return createHmac('sha256', key).update('ecs-console master key id v1').digest('hex').slice(0, 16);
}

function ringOf(keys: Buffer | readonly Buffer[]): RingKey[] {
  const list = Buffer.isBuffer(keys) ? [keys] : [...keys];
  if (list.length === 0) throw new ConsoleError('CONFIG_INVALID', 'the master key ring is empty');
  const ring: RingKey[] = [];
  for (const key of list) {
    if (key.length !== 32) throw new ConsoleError('CONFIG_INVALID', 'master key must be 32 bytes');
    const id = masterKeyId(key);
    if (!ring.some((k) => k.id === id)) ring.push({ key: Buffer.from(key), id });
  }
  return ring;
}

function openWith(key: Buffer, parts: readonly string[], aad: string): string {
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(parts[1]!, 'base64'));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(Buffer.from(parts[2]!, 'base64'));
  return Buffer.concat([d.update(Buffer.from(parts[3]!, 'base64')), d.final()]).toString('utf8');
}

export class SecretBox {
  #ring: RingKey[];
  #generation = 0;

  /** One key, or a ring: the first key seals, every key opens. */
  constructor(keys: Buffer | readonly Buffer[]) {
    this.#ring = ringOf(keys);
  }

  /** The id of the key that seals (the ring's first). */
  get keyId(): string {
    return this.#ring[0]!.id;
  }

  /** Every key's id, the sealing key first. */
  get keyIds(): readonly string[] {
    return this.#ring.map((k) => k.id);
  }

  /**
   * Replaces the ring (a reload, SIGHUP): what is sealed or opened from now on uses the new keys.
   * A call in progress has finished: everything here is synchronous.
   */
  replaceKeys(keys: readonly Buffer[]): void {
    this.#ring = ringOf(keys);
    this.#generation++;
  }

  /** Changes at every replaceKeys: what was opened with an earlier ring is to be opened again. */
  get generation(): number {
    return this.#generation;
  }

  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#ring[0]!.key, iv);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return `v1:${iv.toString('base64')}:${c.getAuthTag().toString('base64')}:${ct.toString('base64')}`;
  }

  open(sealed: string, aad: string): string {
    const opened = this.openWithId(sealed, aad);
    // NOTE: a wrong master key must be loud: every node of a fleet needs the same key.
    if (!opened) throw new ConsoleError('INTERNAL', 'cannot decrypt a stored secret: wrong master key?');
    return opened.plaintext;
  }

  /** The plaintext and the id of the ring's key that opened it (the sealing key is tried first), or null. */
  openWithId(sealed: string, aad: string): { plaintext: string; keyId: string } | null {
    const parts = sealed.split(':');
    if (parts.length !== 4 || parts[0] !== 'v1') throw new ConsoleError('INTERNAL', 'sealed value has an unknown format');
    for (const k of this.#ring) {
      try {
        return { plaintext: openWith(k.key, parts, aad), keyId: k.id };
      } catch {
        /* another key of the ring, or none */
      }
    }
    return null;
  }
}
