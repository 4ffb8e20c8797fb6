/**
 * The RFB handshake as a client (RFC 6143 7.1-7.3): what the proxy does towards a hypervisor's VNC
 * server, and what the test client does. Transport-agnostic: bytes come from a ByteReader, go out
 * through `write`; for VeNCrypt the caller's `startTls` turns the transport into TLS midway.
 */
import { BackendError, ProtocolError } from '../errors.js';
import { ConnectionClosedError, type ByteReader } from './byte-reader.js';
import { SecurityType, securityTypeName } from './constants.js';
import {
  DEFAULT_MAX_NAME_LENGTH,
  DEFAULT_MAX_REASON_LENGTH,
  PROTOCOL_VERSION_LENGTH,
  SERVER_INIT_HEADER_LENGTH,
  clientVersionFor,
  decodeServerInitHeader,
  encodeClientInit,
  encodeProtocolVersion,
  formatVersionNumber,
  parseProtocolVersion,
  sanitizePeerText,
  type RfbVersion,
  type ServerInit,
} from './handshake-messages.js';
import { pixelFormatProblem } from './pixel-format.js';
import { negotiateVeNCrypt, VeNCryptSubtype } from './vencrypt.js';
import { VNC_AUTH_CHALLENGE_LENGTH, vncAuthResponse } from './vnc-auth.js';

type Write = (buf: Buffer) => void;

/** The TLS stream that replaces the transport once VeNCrypt has agreed on a subtype. */
export interface TlsTransport {
  /** Receives the bytes that come out of TLS. */
  reader: ByteReader;
  /** Sends through TLS. */
  write: Write;
}

/**
 * TLS to the server, through VeNCrypt (security type 19) with the X509None or X509Vnc subtype.
 * NOTE: when given, TLS is required: a server that offers anything else is refused, even if it
 * also offers plain None or VNC Authentication (no downgrade).
 */
export interface ClientTlsOptions {
  /**
   * Runs the TLS handshake over the current transport (the server waits for our ClientHello) and
   * returns the TLS stream; throws (a BackendError naming what failed) when TLS cannot be set up.
   */
  startTls(signal: AbortSignal | undefined): Promise<TlsTransport>;
}

/** Options of {@link clientHandshake}. */
export interface ClientHandshakeOptions {
  /** The VNC password, for VNC Authentication. NOTE: never logged nor put in an error. */
  password?: string | undefined;
  /** ClientInit shared-flag (RFC 6143 7.3.1); default true, so other viewers stay connected. */
  shared?: boolean;
  /** Highest version to use (tests use it to act as a 3.3 or 3.7 client); default 3.8. */
  maxVersion?: RfbVersion;
  /** Cap on a failure reason from the server; default 256 bytes. */
  maxReasonLength?: number;
  /** Cap on the desktop name in ServerInit; default 1 KiB. */
  maxNameLength?: number;
  /** Aborts the handshake (e.g. `AbortSignal.timeout(ms)`). */
  signal?: AbortSignal | undefined;
  /** Require TLS (VeNCrypt X509None/X509Vnc); see {@link ClientTlsOptions}. */
  tls?: ClientTlsOptions | undefined;
}

/** What the handshake learned. The reader keeps any bytes that followed ServerInit. */
export interface ClientHandshakeResult {
  /** The version in use. */
  version: RfbVersion;
  /** What the server announced, e.g. "003.889". */
  serverVersion: string;
  /** The security types the server offered (for 3.3, the one it chose). */
  offeredSecurityTypes: number[];
  /** The security type used. */
  securityType: number;
  /** The VeNCrypt subtype used (the connection is then TLS), or null. */
  vencryptSubtype: number | null;
  serverInit: ServerInit;
}

/**
 * Runs the client side of the handshake up to and including ServerInit.
 * Throws BackendError: BACKEND_AUTH_FAILED when the server refuses us, rejects the password or
 * offers no security type we can do; BACKEND_PROTOCOL for junk, bad versions, oversized lengths or
 * a close mid-handshake; BACKEND_UNREACHABLE when the signal aborts or the transport fails.
 */
export async function clientHandshake(reader: ByteReader, write: Write, opts: ClientHandshakeOptions = {}): Promise<ClientHandshakeResult> {
  const state = { stage: 'ProtocolVersion' };
  try {
    return await runClientHandshake(reader, write, opts, state);
  } catch (err) {
    throw toBackendError(err, state.stage, opts.signal);
  }
}

function toBackendError(err: unknown, stage: string, signal: AbortSignal | undefined): BackendError {
  if (err instanceof BackendError) return err;
  if (signal?.aborted && err === signal.reason) {
    return new BackendError('BACKEND_UNREACHABLE', `RFB handshake with the backend did not complete in time (at ${stage})`, { cause: err });
  }
  if (err instanceof ConnectionClosedError) {
    return new BackendError('BACKEND_PROTOCOL', `backend closed the connection during the RFB handshake (at ${stage})`, { cause: err });
  }
  if (err instanceof ProtocolError) {
    return new BackendError('BACKEND_PROTOCOL', `backend broke the RFB handshake at ${stage}: ${err.message}`, { cause: err });
  }
  return new BackendError('BACKEND_UNREACHABLE', `connection to the backend failed during the RFB handshake (at ${stage})`, { cause: err });
}

async function runClientHandshake(plainReader: ByteReader, plainWrite: Write, opts: ClientHandshakeOptions, state: { stage: string }): Promise<ClientHandshakeResult> {
  // Replaced by the TLS stream's once VeNCrypt has started TLS.
  let reader = plainReader;
  let write = plainWrite;
  const ro = { signal: opts.signal };
  const maxReason = opts.maxReasonLength ?? DEFAULT_MAX_REASON_LENGTH;

  // Reads u32 reason-length + reason, capped before reading the text.
  const readReason = async (): Promise<string> => {
    const len = await reader.readU32(ro);
    if (len > maxReason) throw new ProtocolError(`failure reason of ${len} bytes exceeds the limit of ${maxReason}`);
    return sanitizePeerText(await reader.readExactly(len, ro));
  };

  // RFC 6143 7.1.1: the server speaks first; the client answers with min(server, ours).
  const serverVersionNumber = parseProtocolVersion(await reader.readExactly(PROTOCOL_VERSION_LENGTH, ro));
  const serverVersion = formatVersionNumber(serverVersionNumber);
  const version = clientVersionFor(serverVersionNumber, opts.maxVersion ?? '3.8');
  write(encodeProtocolVersion(version));

  // RFC 6143 7.1.2: 3.3 servers choose the type (u32); 3.7+ servers offer a list (u8 count, u8 types).
  state.stage = 'security types';
  let offered: number[];
  if (version === '3.3') {
    const type = await reader.readU32(ro);
    if (type === SecurityType.Invalid) {
      throw new BackendError('BACKEND_AUTH_FAILED', `backend refused the connection: ${await readReason()}`);
    }
    offered = [type];
  } else {
    const count = await reader.readU8(ro);
    if (count === 0) {
      throw new BackendError('BACKEND_AUTH_FAILED', `backend refused the connection: ${await readReason()}`);
    }
    offered = [...(await reader.readExactly(count, ro))];
  }

  const securityType = chooseSecurityType(offered, opts.password !== undefined, opts.tls !== undefined);
  if (version !== '3.3') write(Buffer.from([securityType]));

  let vencryptSubtype: number | null = null;
  if (securityType === SecurityType.VeNCrypt) {
    state.stage = 'VeNCrypt';
    vencryptSubtype = await negotiateVeNCrypt(reader, write, { havePassword: opts.password !== undefined, signal: opts.signal });
    if (reader.bufferedLength > 0) throw new ProtocolError('backend sent data before the TLS handshake');
    state.stage = 'TLS handshake';
    ({ reader, write } = await opts.tls!.startTls(opts.signal));
  }

  if (securityType === SecurityType.VncAuthentication || vencryptSubtype === VeNCryptSubtype.X509Vnc) {
    // RFC 6143 7.2.2: 16-byte challenge, 16-byte response.
    state.stage = 'VNC authentication';
    const challenge = await reader.readExactly(VNC_AUTH_CHALLENGE_LENGTH, ro);
    write(vncAuthResponse(opts.password ?? '', challenge));
  }

  // RFC 6143 7.1.3 and 7.2.1: SecurityResult follows always in 3.8, and in 3.3/3.7 only after
  // VNC Authentication (None goes straight to ClientInit there).
  if (version === '3.8' || securityType !== SecurityType.None) {
    state.stage = 'SecurityResult';
    const status = await reader.readU32(ro);
    if (status !== 0) {
      const reason = version === '3.8' ? await readReason() : '';
      const withPassword = securityType === SecurityType.VncAuthentication || vencryptSubtype === VeNCryptSubtype.X509Vnc;
      const what = withPassword ? 'backend rejected the VNC password' : 'backend refused the connection';
      throw new BackendError('BACKEND_AUTH_FAILED', reason ? `${what}: ${reason}` : `${what} (SecurityResult ${status})`, { failure: withPassword ? 'password' : 'security' });
    }
  }

  // RFC 6143 7.3.1 / 7.3.2: ClientInit, then ServerInit.
  state.stage = 'ServerInit';
  write(encodeClientInit(opts.shared ?? true));
  const header = decodeServerInitHeader(await reader.readExactly(SERVER_INIT_HEADER_LENGTH, ro));
  const maxName = opts.maxNameLength ?? DEFAULT_MAX_NAME_LENGTH;
  if (header.nameLength > maxName) throw new ProtocolError(`desktop name of ${header.nameLength} bytes exceeds the limit of ${maxName}`);
  const problem = pixelFormatProblem(header.pixelFormat);
  if (problem !== undefined) throw new ProtocolError(`invalid pixel format in ServerInit: ${problem}`);
  const name = sanitizePeerText(await reader.readExactly(header.nameLength, ro));

  return {
    version,
    serverVersion,
    offeredSecurityTypes: offered,
    securityType,
    vencryptSubtype,
    serverInit: { width: header.width, height: header.height, pixelFormat: header.pixelFormat, name },
  };
}

/**
 * With TLS required: VeNCrypt, or nothing. Without: None when offered (no secret goes over the
 * wire), else VNC Authentication when we have a password.
 */
function chooseSecurityType(offered: readonly number[], havePassword: boolean, tlsRequired: boolean): number {
  const names = offered.map(securityTypeName).join(', ');
  if (tlsRequired) {
    if (offered.includes(SecurityType.VeNCrypt)) return SecurityType.VeNCrypt;
    throw new BackendError('BACKEND_AUTH_FAILED', `backend does not offer TLS (VeNCrypt) and this target requires it: plain VNC refused (offered: ${names})`, { failure: 'tls' });
  }
  if (offered.includes(SecurityType.None)) return SecurityType.None;
  if (offered.includes(SecurityType.VncAuthentication)) {
    if (havePassword) return SecurityType.VncAuthentication;
    throw new BackendError('BACKEND_AUTH_FAILED', `backend requires VNC authentication but no password is configured (offered: ${names})`);
  }
  if (offered.includes(SecurityType.VeNCrypt)) {
    throw new BackendError('BACKEND_AUTH_FAILED', `backend requires TLS (VeNCrypt) but this target is not set to use TLS (offered: ${names})`, { failure: 'tls' });
  }
  throw new BackendError('BACKEND_AUTH_FAILED', `backend offers no security type we support (offered: ${names}; supported: None(1), VncAuthentication(2), VeNCrypt(19) with TLS)`);
}
