/**
 * Encryption at rest for secret keys and backend VNC passwords: AES-256-GCM under the master key.
 * Stored form: `v1:<base64 iv>:<base64 tag>:<base64 ciphertext>`. The associated data binds a
 * ciphertext to its row (e.g. the AK), so a value copied to another row does not decrypt.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { ConsoleError } from '../errors.js';

export class SecretBox {
  readonly #key: Buffer;
  /**
   * Names the key without revealing it: the first 16 hex digits of HMAC-SHA256(key, a fixed
   * label). Messages and logs show it so that operators can tell keys apart.
   */
  readonly keyId: string;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new ConsoleError('CONFIG_INVALID', 'master key must be 32 bytes');
    this.#key = Buffer.from(key);
    this.keyId = createHmac('sha256', this.#key).update('ecs-console master key id v1').digest('hex').slice(0, 16);
  }

  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return `v1:${iv.toString('base64')}:${c.getAuthTag().toString('base64')}:${ct.toString('base64')}`;
  }

  open(sealed: string, aad: string): string {
    const parts = sealed.split(':');
    if (parts.length !== 4 || parts[0] !== 'v1') throw new ConsoleError('INTERNAL', 'sealed value has an unknown format');
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(parts[1]!, 'base64'));
      d.setAAD(Buffer.from(aad, 'utf8'));
      d.setAuthTag(Buffer.from(parts[2]!, 'base64'));
      return Buffer.concat([d.update(Buffer.from(parts[3]!, 'base64')), d.final()]).toString('utf8');
    } catch (e) {
      // NOTE: a wrong master key must be loud: every node of a fleet needs the same key.
      throw new ConsoleError('INTERNAL', 'cannot decrypt a stored secret: wrong master key?', {}, { cause: e });
    }
  }
}
