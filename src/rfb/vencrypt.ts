/**
 * VeNCrypt (RFB security type 19), the client's negotiation up to the start of TLS: rfbproto
 * "VeNCrypt" (the version 0.2 exchange, the subtype list, the server's acceptance). What follows
 * (the TLS handshake over the same transport, then VNC Authentication inside TLS for X509Vnc, then
 * SecurityResult) is driven by client-handshake.ts; the TLS itself is the caller's.
 */
import { BackendError } from '../errors.js';
import type { ByteReader } from './byte-reader.js';

/** rfbproto VeNCrypt subtypes (u32). Only X509None and X509Vnc are spoken here. */
export const VeNCryptSubtype = {
  Plain: 256,
  TLSNone: 257,
  TLSVnc: 258,
  TLSPlain: 259,
  X509None: 260,
  X509Vnc: 261,
  X509Plain: 262,
  TLSSASL: 263,
  X509SASL: 264,
} as const;

const SUBTYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(VeNCryptSubtype).map(([k, v]) => [v, k]));

/** "X509Vnc(261)", or "unknown(7)". */
export function vencryptSubtypeName(subtype: number): string {
  return `${SUBTYPE_NAMES.get(subtype) ?? 'unknown'}(${subtype})`;
}

/**
 * Runs the client's side of VeNCrypt after security type 19 was chosen, up to the server's
 * acceptance of our subtype; the caller then starts TLS. Prefers X509None (no secret inside TLS),
 * else X509Vnc when a password is at hand. Anonymous-TLS subtypes (TLSNone, TLSVnc: no
 * certificate, so no proof of whom we talk to) and the Plain/SASL ones are never chosen.
 * Throws BackendError (BACKEND_AUTH_FAILED) when no subtype fits or the server refuses.
 */
export async function negotiateVeNCrypt(reader: ByteReader, write: (b: Buffer) => void, opts: { havePassword: boolean; signal?: AbortSignal | undefined }): Promise<number> {
  const ro = { signal: opts.signal };
  // rfbproto VeNCrypt: the server sends its version (u8 major, u8 minor); 0.2 has u32 subtypes.
  const [major, minor] = await reader.readExactly(2, ro);
  if (major !== 0 || minor! < 2) {
    throw new BackendError('BACKEND_AUTH_FAILED', `backend speaks VeNCrypt ${major}.${minor}; only 0.2 is supported`, { failure: 'tls' });
  }
  write(Buffer.from([0, 2]));
  // u8 0 = the server accepts 0.2.
  const ack = await reader.readU8(ro);
  if (ack !== 0) throw new BackendError('BACKEND_AUTH_FAILED', 'backend refused VeNCrypt version 0.2', { failure: 'tls' });
  // u8 count, then count u32 subtypes (at most 1020 bytes: the count is a u8).
  const count = await reader.readU8(ro);
  if (count === 0) throw new BackendError('BACKEND_AUTH_FAILED', 'backend offers no VeNCrypt subtype', { failure: 'tls' });
  const list = await reader.readExactly(count * 4, ro);
  const offered: number[] = [];
  for (let i = 0; i < count; i++) offered.push(list.readUInt32BE(i * 4));
  const subtype = chooseSubtype(offered, opts.havePassword);
  const choice = Buffer.alloc(4);
  choice.writeUInt32BE(subtype, 0);
  write(choice);
  // u8 1 = the server accepts our subtype and starts TLS; 0 = refused.
  const accepted = await reader.readU8(ro);
  if (accepted !== 1) throw new BackendError('BACKEND_AUTH_FAILED', `backend refused the VeNCrypt subtype ${vencryptSubtypeName(subtype)}`, { failure: 'tls' });
  return subtype;
}

function chooseSubtype(offered: readonly number[], havePassword: boolean): number {
  const names = offered.map(vencryptSubtypeName).join(', ');
  if (offered.includes(VeNCryptSubtype.X509None)) return VeNCryptSubtype.X509None;
  if (offered.includes(VeNCryptSubtype.X509Vnc)) {
    if (havePassword) return VeNCryptSubtype.X509Vnc;
    throw new BackendError('BACKEND_AUTH_FAILED', `backend requires VNC authentication inside TLS but no password is configured (offered: ${names})`);
  }
  throw new BackendError('BACKEND_AUTH_FAILED', `backend offers no VeNCrypt subtype with certificates we support (offered: ${names}; supported: X509None(260), X509Vnc(261))`, { failure: 'tls' });
}
