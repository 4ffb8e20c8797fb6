/**
 * Connecting to a VNC server and authenticating as an RFB client: TCP, the RFB handshake (in
 * src/rfb, no sockets there), TLS through VeNCrypt when the target requires it. Shared by every
 * driver: they differ in where the address and the password come from.
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { BackendError } from '../errors.js';
import type { TargetTls } from '../inventory/types.js';
import { ByteReader, clientHandshake, SecurityType, VeNCryptSubtype, vencryptSubtypeName, type TlsTransport } from '../rfb/index.js';
import type { BackendTls } from './backend-tls.js';
import type { ConnectionInfo, VncConnection } from './types.js';

/**
 * What a VNC server may have sent past its handshake that waits for the browser's (the session
 * holds it): beyond this the socket is not read until the relay starts. Far above the longest
 * backend handshake (under 2 KiB), so a handshake is never starved.
 */
export const BACKEND_EARLY_BYTES = 64 * 1024;

export interface RfbConnectOptions {
  readonly host: string;
  readonly port: number;
  /** VNC password for VNC Authentication (also inside TLS); never logged. */
  readonly password: string | null;
  readonly auth: ConnectionInfo['auth'];
  /** Require TLS (VeNCrypt with certificates) and this certificate name; null for plain RFB. */
  readonly tls: TargetTls | null;
  readonly backendTls: BackendTls;
  readonly connectTimeoutMs: number;
  readonly signal: AbortSignal;
}

function ignoreError(): void {}

/** Opens a TCP connection; BackendError `connect` or `timeout` when it cannot. */
function tcpConnect(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new BackendError('BACKEND_UNREACHABLE', `connect to ${host}:${port} abandoned`, { failure: 'timeout' }));
    const sock = connect({ host, port });
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      done();
      sock.destroy();
      reject(new BackendError('BACKEND_UNREACHABLE', `connect to ${host}:${port} abandoned`, { failure: 'timeout' }));
    };
    const timer = setTimeout(() => {
      done();
      sock.destroy();
      reject(new BackendError('BACKEND_UNREACHABLE', `connect to ${host}:${port} timed out`, { failure: 'timeout' }));
    }, timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    const onError = (e: NodeJS.ErrnoException): void => {
      done();
      reject(new BackendError('BACKEND_UNREACHABLE', `connect to ${host}:${port} failed: ${e.code ?? e.message}`, { cause: e }));
    };
    sock.once('connect', () => {
      done();
      // NOTE: off(), not removeAllListeners('error'): that one deletes the event name from the
      // socket's listener table, which V8 then keeps as a hash table (about 400 bytes more for
      // every session, for its life); off() leaves the table's shape as Node made it.
      sock.off('error', onError);
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', onError);
  });
}

/**
 * A reader fed by `stream`: ended when the stream closes (with `onError`'s error when one came
 * first). NOTE: what waits in it stays bounded without a cap of its own: the handshake consumes
 * what it buffers (every read is capped, the largest at 64 KiB), and the stream is paused in the
 * same turn as the handshake ends; from then on the session's own cap (BACKEND_EARLY_BYTES) holds.
 */
function feed(stream: Duplex, onError: (e: Error) => Error, onSilentClose?: () => Error): { reader: ByteReader; detach(): void } {
  const reader = new ByteReader({ maxReadLength: 64 * 1024 });
  let failure: Error | undefined;
  let received = false;
  const onData = (d: Buffer): void => {
    received = true;
    reader.push(d);
  };
  const onErr = (e: Error): void => {
    failure = onError(e);
  };
  const onClose = (): void => reader.end(failure ?? (received ? undefined : onSilentClose?.()));
  stream.on('data', onData);
  stream.on('error', onErr);
  stream.on('close', onClose);
  return {
    reader,
    detach() {
      stream.off('data', onData);
      stream.off('error', onErr);
      stream.off('close', onClose);
    },
  };
}

/**
 * Connects to the VNC server at `host:port` and authenticates (None, VNC password, VeNCrypt
 * X509None/X509Vnc) up to ServerInit. Returns the paused stream and what it read beyond ServerInit.
 * Rejects with BackendError; on any failure or abort the connection is destroyed.
 */
export async function connectRfb(o: RfbConnectOptions): Promise<VncConnection> {
  const address = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  const tcp = await tcpConnect(o.host, o.port, o.connectTimeoutMs, o.signal);
  let stream: Duplex = tcp;
  let tlsSocket: TLSSocket | null = null;
  const plain = feed(tcp, (e) => new BackendError('BACKEND_UNREACHABLE', `connection to ${address} failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
  let current = plain;
  const destroy = (): void => {
    tlsSocket?.destroy();
    tcp.destroy();
  };
  o.signal.addEventListener('abort', destroy, { once: true });
  try {
    const tls = o.tls;
    const result = await clientHandshake(plain.reader, (b) => stream.write(b), {
      password: o.password ?? undefined,
      shared: true,
      signal: o.signal,
      tls: tls === null ? undefined : {
        startTls: async (): Promise<TlsTransport> => {
          plain.detach();
          tlsSocket = await o.backendTls.connect(tcp, tls.serverName, o.signal);
          stream = tlsSocket;
          // Alerts after the handshake (TLS 1.3 refuses a client certificate only then) say what failed.
          // QEMU (GnuTLS) refusing our certificate, or its absence, under TLS 1.3 just closes the
          // connection once the handshake is over: a close before any byte inside TLS says so.
          current = feed(tlsSocket, (e) => o.backendTls.describe(e, tls.serverName), () => o.backendTls.closedAfterHandshake());
          return { reader: current.reader, write: (b) => tlsSocket!.write(b) };
        },
      },
    });
    // In the turn the handshake ended: nothing more is read until the session takes the stream.
    stream.pause();
    current.detach();
    const leftover = current.reader.takeRemainder();
    const t = tlsSocket as TLSSocket | null;
    const info: ConnectionInfo = {
      address,
      tls: t && tls ? `VeNCrypt ${vencryptSubtypeName(result.vencryptSubtype ?? 0)}, ${t.getProtocol() ?? 'TLS'}, certificate for ${tls.serverName}` : null,
      auth: result.securityType === SecurityType.None || result.vencryptSubtype === VeNCryptSubtype.X509None ? 'none' : o.auth,
      rfbVersion: result.version,
    };
    // The stream goes on without us: a late error must not be unhandled. (A shared function: a
    // closure here would keep this handshake's state, the password among it, for the session's life.)
    stream.on('error', ignoreError);
    return { kind: 'vnc', stream, leftover, serverInit: result.serverInit, info };
  } catch (e) {
    destroy();
    throw e;
  } finally {
    o.signal.removeEventListener('abort', destroy);
  }
}
