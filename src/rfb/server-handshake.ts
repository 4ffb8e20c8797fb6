/**
 * The RFB handshake as a server (RFC 6143 7.1-7.3): what the demo server does, and what the proxy
 * does towards the browser. Split into steps so a caller can do work between them (the proxy
 * reaches the backend after the version exchange and then either offers None or refuses with a
 * reason); {@link serverHandshake} runs them all. ServerInit is the caller's to send
 * ({@link encodeServerInit}), because only the caller knows the screen.
 */
import { AuthError, ProtocolError } from '../errors.js';
import type { ByteReader, ReadOptions } from './byte-reader.js';
import { SecurityType, securityTypeName } from './constants.js';
import {
  DEFAULT_MAX_REASON_LENGTH,
  PROTOCOL_VERSION_LENGTH,
  compareRfbVersions,
  encodeProtocolVersion,
  encodeSecurityFailure,
  encodeSecurityResult,
  encodeSecurityType33,
  encodeSecurityTypes,
  exactRfbVersion,
  formatVersionNumber,
  parseProtocolVersion,
  type RfbVersion,
} from './handshake-messages.js';
import { VNC_AUTH_CHALLENGE_LENGTH, vncAuthChallenge, verifyVncAuthResponse } from './vnc-auth.js';

type Write = (buf: Buffer) => void;

/** Options of {@link serverNegotiateVersion}. */
export interface ServerVersionOptions {
  /** The version we announce; default 3.8. */
  version?: RfbVersion;
  signal?: AbortSignal | undefined;
}

/**
 * RFC 6143 7.1.1: sends our ProtocolVersion, reads the client's. The client must answer 3.3, 3.7 or
 * 3.8, and not above ours; anything else is a ProtocolError.
 */
export async function serverNegotiateVersion(reader: ByteReader, write: Write, opts: ServerVersionOptions = {}): Promise<RfbVersion> {
  const ours = opts.version ?? '3.8';
  write(encodeProtocolVersion(ours));
  const theirs = parseProtocolVersion(await reader.readExactly(PROTOCOL_VERSION_LENGTH, { signal: opts.signal }));
  const version = exactRfbVersion(theirs);
  if (version === undefined) throw new ProtocolError(`unsupported client RFB version ${formatVersionNumber(theirs)}`);
  // RFC 6143 7.1.1: "A client should never request a protocol version higher than that offered by the server."
  if (compareRfbVersions(version, ours) > 0) throw new ProtocolError(`client asked for RFB ${version}, above the offered ${ours}`);
  return version;
}

/** The security types this codec can run as a server. */
export type ServerSecurityType = typeof SecurityType.None | typeof SecurityType.VncAuthentication;

/** Options of {@link serverNegotiateSecurity}. */
export interface ServerSecurityOptions {
  /** Offered in this order (3.3: the first is the one used). */
  securityTypes: readonly ServerSecurityType[];
  /** The password for VNC Authentication. NOTE: never logged. */
  password?: string | undefined;
  /** Checks a VNC Authentication response instead of `password` (e.g. against several passwords). */
  verifyVncAuth?: ((challenge: Buffer, response: Buffer) => boolean) | undefined;
  /** The 3.8 reason sent when authentication fails; default "authentication failed". */
  failureReason?: string;
  signal?: AbortSignal | undefined;
}

/**
 * RFC 6143 7.1.2-7.2: offers the security types, runs the one the client picks, sends
 * SecurityResult where the version has one. Resolves with the type used.
 * Throws AuthError (AUTH_INVALID) after telling the client when its VNC password is wrong, and
 * ProtocolError when it picks a type we did not offer.
 */
export async function serverNegotiateSecurity(reader: ByteReader, write: Write, version: RfbVersion, opts: ServerSecurityOptions): Promise<ServerSecurityType> {
  const offered = opts.securityTypes;
  const first = offered[0];
  if (first === undefined) throw new RangeError('serverNegotiateSecurity needs at least one security type');
  if (offered.includes(SecurityType.VncAuthentication) && opts.password === undefined && opts.verifyVncAuth === undefined) {
    throw new RangeError('VNC Authentication needs a password or a verifyVncAuth callback');
  }
  const ro: ReadOptions = { signal: opts.signal };

  let chosen: ServerSecurityType;
  if (version === '3.3') {
    chosen = first;
    write(encodeSecurityType33(chosen));
  } else {
    write(encodeSecurityTypes(offered));
    const picked = await reader.readU8(ro);
    const match = offered.find((t) => t === picked);
    if (match === undefined) {
      const reason = `security type ${securityTypeName(picked)} was not offered`;
      write(encodeSecurityResult(version, false, reason));
      throw new ProtocolError(`client chose ${reason}`);
    }
    chosen = match;
  }

  if (chosen === SecurityType.VncAuthentication) {
    const challenge = vncAuthChallenge();
    write(challenge);
    const response = await reader.readExactly(VNC_AUTH_CHALLENGE_LENGTH, ro);
    const ok = opts.verifyVncAuth
      ? opts.verifyVncAuth(challenge, response)
      : verifyVncAuthResponse(opts.password ?? '', challenge, response);
    write(encodeSecurityResult(version, ok, opts.failureReason));
    if (!ok) throw new AuthError('AUTH_INVALID', 'VNC authentication failed');
  } else if (version === '3.8') {
    // RFC 6143 7.2.1: with None, only 3.8 sends SecurityResult.
    write(encodeSecurityResult(version, true));
  }
  return chosen;
}

/**
 * Refuses the client at the security step with a readable reason (RFC 6143 7.1.2: 3.7/3.8 send
 * zero security types, 3.3 sends security type 0, then the reason). The caller closes afterwards.
 */
export function serverRefuseSecurity(write: Write, version: RfbVersion, reason: string, maxReasonLength = DEFAULT_MAX_REASON_LENGTH): void {
  write(encodeSecurityFailure(version, reason, maxReasonLength));
}

/** RFC 6143 7.3.1: reads ClientInit (u8 shared-flag). */
export async function serverReadClientInit(reader: ByteReader, opts: ReadOptions = {}): Promise<{ shared: boolean }> {
  return { shared: (await reader.readU8(opts)) !== 0 };
}

/** Options of {@link serverHandshake}. */
export type ServerHandshakeOptions = ServerVersionOptions & ServerSecurityOptions;

/** What {@link serverHandshake} agreed with the client. */
export interface ServerHandshakeResult {
  version: RfbVersion;
  securityType: ServerSecurityType;
  /** ClientInit shared-flag. */
  shared: boolean;
}

/**
 * Version, security and ClientInit in one call. The caller sends ServerInit next, then passes
 * `reader.takeRemainder()` to its message framer.
 */
export async function serverHandshake(reader: ByteReader, write: Write, opts: ServerHandshakeOptions): Promise<ServerHandshakeResult> {
  const version = await serverNegotiateVersion(reader, write, opts);
  const securityType = await serverNegotiateSecurity(reader, write, version, opts);
  const { shared } = await serverReadClientInit(reader, { signal: opts.signal });
  return { version, securityType, shared };
}
