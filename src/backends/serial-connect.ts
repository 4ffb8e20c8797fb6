/**
 * Serial ports: a plain byte stream to the VM's serial device as QEMU (`-chardev socket,server=on`)
 * or libvirt (`<serial type='tcp'|'unix'>` in server mode) exposes it. No handshake and no
 * authentication of its own: the address is reachable from the service's network only (see
 * docs/deploy.md), as a VNC server without a password would be.
 */
import { connect } from 'node:net';
import { BackendError } from '../errors.js';
import type { SerialConnection } from './types.js';

/** `unix:/path` -> path; `tcp:host:port` -> host and port (as the inventory normalises them). */
export function serialEndpoint(address: string): { path: string } | { host: string; port: number } {
  if (address.startsWith('unix:')) return { path: address.slice(5) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  if (!m) throw new BackendError('BACKEND_UNREACHABLE', `serial port address ${JSON.stringify(address)} is not unix:/path or tcp:host:port`, { failure: 'connect' });
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/**
 * Connects to a serial port; resolves with the socket paused (the caller attaches its listeners,
 * then resumes it). Rejects with BackendError on a refusal, the timeout or `signal`.
 */
export function connectSerial(address: string, opts: { connectTimeoutMs: number; signal: AbortSignal }): Promise<SerialConnection> {
  const ep = serialEndpoint(address);
  return new Promise<SerialConnection>((resolve, reject) => {
    if (opts.signal.aborted) return reject(new BackendError('BACKEND_UNREACHABLE', `gave up connecting to the serial port ${address}`, { failure: 'timeout' }));
    const sock = 'path' in ep ? connect({ path: ep.path }) : connect({ host: ep.host, port: ep.port, noDelay: true });
    sock.pause();
    const done = (e: BackendError | null): void => {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
      sock.off('connect', onConnect);
      sock.off('error', onError);
      if (e) {
        sock.destroy();
        reject(e);
      }
    };
    const onConnect = (): void => {
      done(null);
      resolve({ kind: 'serial', stream: sock, leftover: Buffer.alloc(0), info: { address, tls: null, auth: 'none' } });
    };
    const onError = (err: Error): void => done(new BackendError('BACKEND_UNREACHABLE', `cannot connect to the serial port ${address}: ${err.message}`, { failure: 'connect', cause: err }));
    const onAbort = (): void => done(new BackendError('BACKEND_UNREACHABLE', `gave up connecting to the serial port ${address}`, { failure: 'timeout' }));
    const timer = setTimeout(() => done(new BackendError('BACKEND_UNREACHABLE', `the serial port ${address} did not answer within ${opts.connectTimeoutMs} ms`, { failure: 'timeout' })), opts.connectTimeoutMs);
    sock.once('connect', onConnect);
    sock.once('error', onError);
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });
}
