/**
 * The backend driver seam: how the proxy (and later the screenshot and serial paths) reaches and
 * authenticates to a console target. One driver per target kind (`static`, `qemu-qmp`,
 * `libvirt`); callers go through {@link BackendOpener} and never know which one served them.
 */
import type { Duplex } from 'node:stream';
import type { ResolvedConsoleTarget, TargetKind } from '../inventory/types.js';
import type { RfbVersion, ServerInit } from '../rfb/index.js';

/** What is opened on a target: its VNC console, or (issue 16) its serial port. */
export type ConsoleKind = 'vnc' | 'serial';

export interface OpenOptions<K extends ConsoleKind = ConsoleKind> {
  readonly kind: K;
  /**
   * Ends the attempt when it aborts (the session closed, its handshake timed out): every wait
   * ends, sockets are destroyed, locks are released.
   */
  readonly signal: AbortSignal;
}

/** How a connection was made and authenticated: for the log and `server check`, never a secret. */
export interface ConnectionInfo {
  /** `host:port` of the VNC server. */
  readonly address: string;
  /** E.g. `VeNCrypt X509Vnc, TLSv1.3, certificate for hv1.example.com`, or null for plain TCP. */
  readonly tls: string | null;
  /** How the proxy authenticated: none, the stored password, or a one-time password set for this session. */
  readonly auth: 'none' | 'vnc-password' | 'one-time-password';
  readonly rfbVersion: RfbVersion;
}

/**
 * An authenticated VNC connection, its RFB handshake done up to ServerInit. The stream is paused:
 * the caller attaches its listeners, then resumes it.
 */
export interface VncConnection {
  readonly kind: 'vnc';
  /** TCP or TLS socket to the VNC server, past ServerInit. */
  readonly stream: Duplex;
  /** What the server sent after ServerInit that the handshake already read (at most BACKEND_EARLY_BYTES and one read). */
  readonly leftover: Buffer;
  /** What the browser may be told of this desktop (its name is replaced by the inventory's). */
  readonly serverInit: ServerInit;
  readonly info: ConnectionInfo;
}

/** A serial port's byte stream (paused: the caller attaches its listeners, then resumes it). */
export interface SerialConnection {
  readonly kind: 'serial';
  readonly stream: Duplex;
  readonly leftover: Buffer;
  readonly info: Omit<ConnectionInfo, 'rfbVersion'>;
}

export type BackendConnection<K extends ConsoleKind> = K extends 'vnc' ? VncConnection : SerialConnection;

/** Opens a connection to a console target; rejects with BackendError (its `failure` says which step failed). */
export interface BackendOpener {
  open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>>;
}

/** One implementation per target kind. */
export interface BackendDriver extends BackendOpener {
  readonly targetKind: TargetKind;
}

/**
 * Serialises work on one hypervisor resource (a VM's single VNC password) across every process
 * sharing the store: a fleet's proxy nodes, the CLI. Store port: SQLite (one node) locks in
 * process, PostgreSQL with an advisory lock.
 */
export interface BackendLockStore {
  /**
   * Runs `fn` while holding the lock named `key`; waits for it until `signal` aborts (then rejects
   * with the signal's reason without running `fn`). Released when `fn` settles.
   */
  withLock<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T>;
}
