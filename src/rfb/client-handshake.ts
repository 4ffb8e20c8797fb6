/**
 * The RFB handshake as a client (RFC 6143 7.1-7.3): what the proxy does towards a hypervisor's VNC
 * server, and what the test client does. Transport-agnostic: bytes come from a ByteReader, go out
 * through `write`.
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
import { VNC_AUTH_CHALLENGE_LENGTH, vncAuthResponse } from './vnc-auth.js';

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
  serverInit: ServerInit;
}

type Write = (buf: Buffer) => void;

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

async function runClientHandshake(reader: ByteReader, write: Write, opts: ClientHandshakeOptions, state: { stage: string }): Promise<ClientHandshakeResult> {
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

  const securityType = chooseSecurityType(offered, opts.password !== undefined);
  if (version !== '3.3') write(Buffer.from([securityType]));

  if (securityType === SecurityType.VncAuthentication) {
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
      const what = securityType === SecurityType.VncAuthentication ? 'backend rejected the VNC password' : 'backend refused the connection';
      throw new BackendError('BACKEND_AUTH_FAILED', reason ? `${what}: ${reason}` : `${what} (SecurityResult ${status})`);
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
    serverInit: { width: header.width, height: header.height, pixelFormat: header.pixelFormat, name },
  };
}

/** None when offered (no secret goes over the wire), else VNC Authentication when we have a password. */
function chooseSecurityType(offered: readonly number[], havePassword: boolean): number {
  if (offered.includes(SecurityType.None)) return SecurityType.None;
  const names = offered.map(securityTypeName).join(', ');
  if (offered.includes(SecurityType.VncAuthentication)) {
    if (havePassword) return SecurityType.VncAuthentication;
    throw new BackendError('BACKEND_AUTH_FAILED', `backend requires VNC authentication but no password is configured (offered: ${names})`);
  }
  throw new BackendError('BACKEND_AUTH_FAILED', `backend offers no security type we support (offered: ${names}; supported: None(1), VncAuthentication(2))`);
}
