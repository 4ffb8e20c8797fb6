/**
 * The drivers, one per target kind, and {@link Backends}, which picks one by the target's kind.
 * `static`: a fixed address, no password or the stored one. `qemu-qmp` and `libvirt`: a fresh
 * random password for each session, set on the hypervisor, used at once, then expired; the set and
 * the authentication are serialised per VM across the fleet (BackendLockStore), since QEMU holds
 * one VNC password at a time.
 */
import { randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Config } from '../config/config.js';
import { BackendError } from '../errors.js';
import type { LibvirtTarget, QemuQmpTarget, ResolvedConsoleTarget, StaticTarget, TargetKind } from '../inventory/types.js';
import type { Logger } from '../log.js';
import { BackendTls } from './backend-tls.js';
import { Virsh } from './libvirt.js';
import { QmpClient } from './qmp-client.js';
import { connectRfb } from './rfb-connect.js';
import type { BackendConnection, BackendDriver, BackendLockStore, BackendOpener, ConsoleKind, OpenOptions, VncConnection } from './types.js';

export type BackendsConfig = Pick<Config,
  'backendTlsCa' | 'backendTlsCert' | 'backendTlsKey' | 'proxyBackendConnectTimeoutSeconds' | 'backendOneTimePasswordSeconds' | 'backendManagementTimeoutSeconds'>;

export interface BackendsDeps {
  readonly config: BackendsConfig;
  readonly locks: BackendLockStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** The virsh binary (default `virsh`, from PATH). */
  readonly virsh?: string;
}

/**
 * A one-time VNC password: 8 characters drawn uniformly from the 94 printable ASCII characters
 * other than space (52 bits). VNC Authentication's DES key takes 8 bytes and ignores one bit of
 * each (RFC 6143 7.2.2), so 56 bits is the most any VNC password has; these stay printable so
 * that QMP's JSON and libvirt's XML carry them unchanged.
 */
export function oneTimePassword(): string {
  let out = '';
  for (let i = 0; i < 8; i++) out += String.fromCharCode(randomInt(0x21, 0x7f));
  return out;
}

function unsupported(kind: ConsoleKind, target: TargetKind): BackendError {
  return new BackendError('BACKEND_UNREACHABLE', `a ${target} target has no ${kind} console`, { failure: 'unsupported' });
}

/** The lock wait ended before this session's turn: a clear reason instead of the bare abort. */
async function locked<T>(locks: BackendLockStore, key: string, signal: AbortSignal, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await locks.withLock(key, signal, fn);
  } catch (e) {
    if (signal.aborted && e === signal.reason) {
      throw new BackendError('BACKEND_UNREACHABLE', `gave up waiting for other consoles of ${what} to finish authenticating`, { failure: 'timeout', cause: e });
    }
    throw e;
  }
}

class StaticDriver implements BackendDriver {
  readonly targetKind = 'static';
  constructor(private readonly b: Backends) {}

  async open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>> {
    const c = target.console as StaticTarget;
    if (opts.kind !== 'vnc') throw unsupported(opts.kind, 'static');
    const conn = await connectRfb({
      host: c.host, port: c.port, password: target.password, auth: c.auth === 'vnc-password' ? 'vnc-password' : 'none', tls: c.tls,
      backendTls: this.b.tls, connectTimeoutMs: this.b.connectTimeoutMs, signal: opts.signal,
    });
    return conn as BackendConnection<K>;
  }
}

class QemuQmpDriver implements BackendDriver {
  readonly targetKind = 'qemu-qmp';
  constructor(private readonly b: Backends) {}

  async open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>> {
    const c = target.console as QemuQmpTarget;
    if (opts.kind !== 'vnc') throw unsupported(opts.kind, 'qemu-qmp');
    const signal = opts.signal;
    // One VNC password per QEMU: the set and our authentication with it, one session at a time.
    const qmpOpts = { timeoutMs: this.b.managementTimeoutMs, signal };
    const conn = await locked(this.b.locks, `qemu-qmp ${c.qmp}`, signal, `the VM behind ${c.qmp}`, async () => {
      // NOTE: the password exists only in this scope: never stored, never logged, not kept.
      const password = oneTimePassword();
      // The monitor is left between the steps: QEMU's serves one client at a time, and others
      // (an operator, a management tool) may need it too. The lock keeps the steps together.
      const qmp = await QmpClient.connect(c.qmp, qmpOpts);
      try {
        await qmp.execute('set_password', { protocol: 'vnc', password });
        // QEMU: "+N" is N seconds from now; a crash of ours before the expiry below leaves it valid that long.
        await qmp.execute('expire_password', { protocol: 'vnc', time: `+${this.b.passwordSeconds}` });
      } finally {
        qmp.close();
      }
      try {
        return await connectRfb({
          host: c.host, port: c.port, password, auth: 'one-time-password', tls: c.tls,
          backendTls: this.b.tls, connectTimeoutMs: this.b.connectTimeoutMs, signal,
        });
      } finally {
        // NOTE: one connection per password: expired as soon as it has been used (or failed).
        // QEMU: "now" is expiry time 0, in the past; connections already authenticated stay.
        await this.expireNow(c.qmp).catch((e: unknown) => {
          this.b.log.warn({ server: target.serverId, qmp: c.qmp, error: (e as Error).message }, `could not expire the one-time VNC password at once; it expires in ${this.b.passwordSeconds} s`);
        });
      }
    });
    return conn as BackendConnection<K>;
  }

  /** expire_password now, on its own deadline (the session's may have run out). */
  private async expireNow(qmpAddress: string): Promise<void> {
    const qmp = await QmpClient.connect(qmpAddress, { timeoutMs: this.b.managementTimeoutMs, signal: AbortSignal.timeout(this.b.managementTimeoutMs * 2) });
    try {
      await qmp.execute('expire_password', { protocol: 'vnc', time: 'now' });
    } finally {
      qmp.close();
    }
  }
}

class LibvirtDriver implements BackendDriver {
  readonly targetKind = 'libvirt';
  constructor(private readonly b: Backends) {}

  async open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>> {
    const c = target.console as LibvirtTarget;
    if (opts.kind !== 'vnc') throw unsupported(opts.kind, 'libvirt');
    const signal = opts.signal;
    const virsh = this.b.virsh(c.uri, signal);
    const conn = await locked(this.b.locks, `libvirt ${c.uri} ${c.domain}`, signal, `the domain ${c.domain}`, async () => {
      const graphics = await virsh.vncGraphics(c.domain);
      const host = c.host ?? graphics.host(c.uri);
      let set = false;
      try {
        // NOTE: the password goes to virsh through a pipe, never a file, and only lives in this scope.
        const password = oneTimePassword();
        await virsh.setVncPassword(c.domain, graphics, password, this.b.clock.now() + this.b.passwordSeconds * 1000);
        set = true;
        return await connectRfb({
          host, port: graphics.port, password, auth: 'one-time-password', tls: c.tls,
          backendTls: this.b.tls, connectTimeoutMs: this.b.connectTimeoutMs, signal,
        });
      } finally {
        // One connection per password: another random one, already expired, replaces it (libvirt
        // has no "expire only"; an expiry in the past is QMP's "now").
        if (set) {
          await this.b.virsh(c.uri, AbortSignal.timeout(this.b.managementTimeoutMs))
            .setVncPassword(c.domain, graphics, oneTimePassword(), 1000)
            .catch((e: unknown) => {
              this.b.log.warn({ server: target.serverId, domain: c.domain, error: (e as Error).message }, `could not expire the one-time VNC password at once; it expires in ${this.b.passwordSeconds} s`);
            });
        }
      }
    });
    return conn as BackendConnection<K>;
  }
}

/** Every driver, chosen by the target's kind; the one thing proxy/ and the CLI talk to. */
export class Backends implements BackendOpener {
  readonly tls: BackendTls;
  readonly locks: BackendLockStore;
  readonly log: Logger;
  readonly clock: Clock;
  readonly connectTimeoutMs: number;
  readonly passwordSeconds: number;
  readonly managementTimeoutMs: number;
  private readonly virshPath: string;
  private readonly drivers: Readonly<Record<TargetKind, BackendDriver>>;

  /** Loads the hypervisor TLS files (ConfigError when they cannot be used). */
  constructor(deps: BackendsDeps) {
    const c = deps.config;
    this.tls = new BackendTls(c);
    this.locks = deps.locks;
    this.log = deps.log;
    this.clock = deps.clock;
    this.connectTimeoutMs = c.proxyBackendConnectTimeoutSeconds * 1000;
    this.passwordSeconds = c.backendOneTimePasswordSeconds;
    this.managementTimeoutMs = c.backendManagementTimeoutSeconds * 1000;
    this.virshPath = deps.virsh ?? 'virsh';
    this.drivers = { static: new StaticDriver(this), 'qemu-qmp': new QemuQmpDriver(this), libvirt: new LibvirtDriver(this) };
  }

  open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>> {
    return this.drivers[target.console.kind].open(target, opts);
  }

  /**
   * Reaches and authenticates to a target as a session would, then hangs up: what `server check`
   * reports. Rejects with BackendError naming the failed step.
   */
  async check(target: ResolvedConsoleTarget, timeoutMs: number): Promise<VncConnection['info'] & { width: number; height: number }> {
    const conn = await this.open(target, { kind: 'vnc', signal: AbortSignal.timeout(timeoutMs) });
    conn.stream.destroy();
    return { ...conn.info, width: conn.serverInit.width, height: conn.serverInit.height };
  }

  /** Reloads the hypervisor TLS files for new connections (SIGHUP); throws ConfigError, keeping the current ones. */
  reloadTls(config: BackendsConfig): void {
    this.tls.reload(config);
  }

  /** virsh against one libvirt URI, each call bounded by the management timeout and `signal`. */
  virsh(uri: string, signal: AbortSignal): Virsh {
    return new Virsh(this.virshPath, uri, this.managementTimeoutMs, signal);
  }
}
