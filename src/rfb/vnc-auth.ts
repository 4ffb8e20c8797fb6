/**
 * VNC Authentication (RFC 6143 7.2.2): the server sends a 16-byte random challenge, the client
 * answers with the challenge DES-encrypted under the password.
 */
import { createCipheriv, randomBytes, timingSafeEqual } from 'node:crypto';

/** RFC 6143 7.2.2: the challenge and the response are 16 bytes. */
export const VNC_AUTH_CHALLENGE_LENGTH = 16;

/**
 * The DES key VNC uses: the password's first 8 bytes (zero-padded), each byte's bits reversed.
 * The bit reversal is not in RFC 6143's text but every implementation does it (the original code
 * fed a DES routine that numbered bits the other way round).
 */
function vncDesKey(password: string): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) {
    let b = key[i] ?? 0;
    let r = 0;
    for (let bit = 0; bit < 8; bit++) {
      r = (r << 1) | (b & 1);
      b >>= 1;
    }
    key[i] = r;
  }
  return key;
}

/**
 * The 16-byte response to a VNC Authentication challenge.
 * Node 20 under OpenSSL 3 has no `des-ecb`; `des-ede-ecb` with key K||K is the same cipher
 * (encrypt-decrypt-encrypt with one key is single DES).
 */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  if (challenge.length !== VNC_AUTH_CHALLENGE_LENGTH) {
    throw new RangeError(`VNC authentication challenge must be ${VNC_AUTH_CHALLENGE_LENGTH} bytes, got ${challenge.length}`);
  }
  const k = vncDesKey(password);
  const cipher = createCipheriv('des-ede-ecb', Buffer.concat([k, k]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(challenge), cipher.final()]);
}

/** A fresh random challenge (RFC 6143 7.2.2: "a random 16-byte challenge"). */
export function vncAuthChallenge(): Buffer {
  return randomBytes(VNC_AUTH_CHALLENGE_LENGTH);
}

/** Whether `response` answers `challenge` for `password`, compared in constant time. */
export function verifyVncAuthResponse(password: string, challenge: Buffer, response: Buffer): boolean {
  if (response.length !== VNC_AUTH_CHALLENGE_LENGTH) return false;
  return timingSafeEqual(vncAuthResponse(password, challenge), response);
}
