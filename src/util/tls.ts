/**
 * TLS for both listeners (API and proxy): one cipher policy, certificates that can be reloaded
 * for new connections (SIGHUP), and a readable answer to plain HTTP sent to a TLS port.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Server as TlsServer, type SecureContextOptions } from 'node:tls';
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';

/**
 * Forward-secret AEAD suites only: TLS 1.3's, and ECDHE with AES-GCM or ChaCha20-Poly1305 on
 * TLS 1.2 (no static-RSA key exchange, no CBC, no SHA-1 MAC, no finite-field DHE).
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** A listener's certificate (chain) and private key files, and the options that name them. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** Option names for messages, e.g. `apiTlsCert`. */
  readonly certOption: string;
  readonly keyOption: string;
}

function read(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(option, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * The secure-context options of a listener: its files, TLS 1.2 at least, TLS_CIPHERS in our
 * order. Used at start and for every reload (a new context replaces every option).
 */
export function tlsContextOptions(files: TlsFiles): SecureContextOptions {
  return {
    cert: read(files.cert, files.certOption),
    key: read(files.key, files.keyOption),
    minVersion: 'TLSv1.2',
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
  };
}

/** A listener's certificate and key files in `config`, or null when it serves plain HTTP. */
export function listenerTlsFiles(config: Pick<Config, 'apiTlsCert' | 'apiTlsKey' | 'proxyTlsCert' | 'proxyTlsKey'>, side: 'api' | 'proxy'): TlsFiles | null {
  const [cert, key] = side === 'api' ? [config.apiTlsCert, config.apiTlsKey] : [config.proxyTlsCert, config.proxyTlsKey];
  return cert && key ? { cert, key, certOption: `${side}TlsCert`, keyOption: `${side}TlsKey` } : null;
}

/**
 * Loads a listener's files (as `config` names them now) again and uses them for new connections;
 * connections already open keep theirs. Throws (ConfigError, or OpenSSL's error for a bad
 * certificate or a key that does not match it) and keeps the current certificate when the new
 * one cannot be used.
 */
export function reloadTls(server: unknown, config: Config, side: 'api' | 'proxy'): void {
  const files = listenerTlsFiles(config, side);
  if (!(server instanceof TlsServer) || !files) throw new Error(`switching the ${side === 'api' ? 'API' : 'proxy'} between HTTP and HTTPS needs a restart`);
  server.setSecureContext(tlsContextOptions(files));
}

/** nginx's words for a plain HTTP request on a TLS port. */
export const PLAIN_HTTP_MESSAGE = 'The plain HTTP request was sent to HTTPS port';

/** True when the first bytes of a request are a HEAD request's (its answer has no body). */
export function isHeadRequest(firstBytes: Buffer): boolean {
  return firstBytes.subarray(0, 5).toString('latin1') === 'HEAD ';
}

/** A 400 in plain text telling the client to use https (the proxy's answer). */
export function plainHttpTextAnswer(firstBytes: Buffer): string {
  const body = `${PLAIN_HTTP_MESSAGE}: use https:// (wss:// for WebSockets).\n`;
  return 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${isHeadRequest(firstBytes) ? '' : body}`;
}

/** TLS record content type 22, handshake: the first byte a TLS client sends (RFC 8446 5.1). */
const TLS_HANDSHAKE = 0x16;

/**
 * Makes a TLS server answer a client that speaks plain HTTP to it (400 and `answer()`, as nginx
 * does) instead of failing the handshake with an empty reply. Looks at the first byte of each
 * connection: a TLS handshake record goes on to TLS unchanged; anything else gets the answer and
 * is closed. A connection that sends nothing within `firstByteTimeoutMs` is closed.
 */
export function answerPlainHttp(server: TlsServer, answer: (firstBytes: Buffer) => string, firstByteTimeoutMs: number): void {
  // The TLS server's own 'connection' listener wraps the socket in TLS; it runs after our look.
  const tlsListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    // Until TLS takes over, a reset must not become an unhandled 'error'.
    socket.on('error', () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), firstByteTimeoutMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      if (chunk[0] === TLS_HANDSHAKE) {
        // TLS reads what is buffered in the socket before its first read from the network.
        socket.unshift(chunk);
        for (const l of tlsListeners) l.call(server, socket);
        return;
      }
      // Read (and drop) the rest of the request, so that closing does not reset the connection
      // before the client has read the answer.
      socket.on('data', () => undefined);
      socket.resume();
      socket.end(answer(chunk));
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  });
}
