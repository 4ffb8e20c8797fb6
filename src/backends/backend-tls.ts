/**
 * TLS from the proxy to hypervisors' VNC servers (VeNCrypt X509None/X509Vnc): the CA that signs
 * their certificates, and the proxy's own client certificate, from files named in the config.
 * Reloaded for new connections (SIGHUP); connections already open keep theirs.
 */
import { readFileSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect, createSecureContext, type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import type { Config } from '../config/config.js';
import { BackendError, ConfigError } from '../errors.js';
import { TLS_CIPHERS } from '../util/tls.js';

export type BackendTlsConfig = Pick<Config, 'backendTlsCa' | 'backendTlsCert' | 'backendTlsKey'>;

function read(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(option, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

interface Loaded {
  readonly context: SecureContext;
  readonly clientCertificate: boolean;
}

/** Reads the files `config` names into a secure context; null when no CA is configured. Throws ConfigError. */
function load(config: BackendTlsConfig): Loaded | null {
  if (config.backendTlsCa === null) return null;
  const ca = read(config.backendTlsCa, 'backendTlsCa');
  const cert = config.backendTlsCert === null ? undefined : read(config.backendTlsCert, 'backendTlsCert');
  const key = config.backendTlsKey === null ? undefined : read(config.backendTlsKey, 'backendTlsKey');
  try {
    return {
      context: createSecureContext({ ca, ...(cert ? { cert } : {}), ...(key ? { key } : {}), minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS }),
      clientCertificate: cert !== undefined,
    };
  } catch (e) {
    throw new ConfigError(cert ? 'backendTlsCert' : 'backendTlsCa', `cannot use the files: ${(e as Error).message}`);
  }
}

/** OpenSSL's verification codes that mean "not signed by a CA we trust" (or not valid now). */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CERT_UNTRUSTED',
  'CERT_REJECTED', 'INVALID_CA', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'INVALID_PURPOSE',
]);

/**
 * TLS alerts by which a server refuses our certificate (or its absence): OpenSSL names them
 * `ERR_SSL_*_ALERT_<alert>`; QEMU (GnuTLS) sends `certificate required` (TLS 1.3) or
 * `handshake failure`, `bad certificate`, `unknown ca`, `access denied`.
 */
const CLIENT_CERT_ALERT = /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|ACCESS_DENIED|HANDSHAKE_FAILURE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|DECRYPT_ERROR)$/;

export class BackendTls {
  private loaded: Loaded | null;

  /** Loads the configured files; throws ConfigError when they cannot be used. */
  constructor(config: BackendTlsConfig) {
    this.loaded = load(config);
  }

  /** Whether a CA is configured (without one, targets that require TLS fail with a clear reason). */
  get configured(): boolean {
    return this.loaded !== null;
  }

  /**
   * Loads the files `config` names now and uses them for new connections; open ones keep theirs.
   * Throws ConfigError (keeping the current files) when they cannot be used.
   */
  reload(config: BackendTlsConfig): void {
    this.loaded = load(config);
  }

  /**
   * Runs a TLS handshake as a client over `socket` (already connected, past VeNCrypt's subtype
   * acceptance): the server's certificate must chain to the configured CA and carry `serverName`.
   * Throws BackendError naming the failure: `tls-certificate`, `tls-name`, `tls-client-certificate`, `tls`.
   */
  async connect(socket: Socket, serverName: string, signal: AbortSignal): Promise<TLSSocket> {
    const loaded = this.loaded;
    if (!loaded) throw new BackendError('BACKEND_AUTH_FAILED', 'this target requires TLS but no CA is configured for hypervisor certificates (backendTlsCa)', { failure: 'tls' });
    const tlsSocket = connect({
      socket,
      secureContext: loaded.context,
      // SNI carries DNS names only (RFC 6066 3).
      ...(isIP(serverName) === 0 ? { servername: serverName } : {}),
      rejectUnauthorized: true,
      // NOTE: the name checked is the target's, not whatever host the socket reached.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(serverName, cert),
    });
    const abort = (): void => {
      tlsSocket.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', abort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        tlsSocket.once('secureConnect', resolve);
        tlsSocket.once('error', reject);
        tlsSocket.once('close', () => reject(new Error('the connection closed during the TLS handshake')));
      });
      tlsSocket.removeAllListeners('error');
      tlsSocket.removeAllListeners('close');
      return tlsSocket;
    } catch (e) {
      tlsSocket.destroy();
      if (signal.aborted) throw new BackendError('BACKEND_UNREACHABLE', 'the TLS handshake with the VNC server did not complete in time', { failure: 'timeout', cause: e });
      throw this.describe(e, serverName);
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  /** The server hung up right after the TLS handshake, before a byte of RFB: it refused our client certificate (or its absence). */
  closedAfterHandshake(): BackendError {
    const ours = this.loaded?.clientCertificate
      ? 'the VNC server closed the connection right after the TLS handshake: it refused our client certificate (backendTlsCert)'
      : 'the VNC server closed the connection right after the TLS handshake: it requires a client certificate and none is configured (backendTlsCert, backendTlsKey)';
    return new BackendError('BACKEND_AUTH_FAILED', ours, { failure: 'tls-client-certificate' });
  }

  /** A TLS failure as a BackendError that says what failed (also for errors after the handshake, e.g. a TLS 1.3 alert). */
  describe(e: unknown, serverName: string): BackendError {
    if (e instanceof BackendError) return e;
    const code = (e as NodeJS.ErrnoException)?.code ?? '';
    const msg = (e as Error)?.message ?? String(e);
    if (UNTRUSTED.has(code)) {
      return new BackendError('BACKEND_AUTH_FAILED', `the VNC server's certificate is not trusted: ${code} (checked against backendTlsCa)`, { failure: 'tls-certificate', cause: e });
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new BackendError('BACKEND_AUTH_FAILED', `the VNC server's certificate is not valid for ${serverName}: ${msg}`, { failure: 'tls-name', cause: e });
    }
    if (CLIENT_CERT_ALERT.test(code) || code === 'ECONNRESET') {
      const ours = this.loaded?.clientCertificate
        ? 'the VNC server refused our client certificate (backendTlsCert)'
        : 'the VNC server requires a client certificate and none is configured (backendTlsCert, backendTlsKey)';
      return new BackendError('BACKEND_AUTH_FAILED', `${ours}: ${code}`, { failure: 'tls-client-certificate', cause: e });
    }
    return new BackendError('BACKEND_AUTH_FAILED', `TLS with the VNC server failed: ${code ? `${code} ` : ''}${msg}`, { failure: 'tls', cause: e });
  }
}
