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
import { Virsh, type VncGraphics } from './libvirt.js';
import { QmpClient } from './qmp-client.js';
import { connectRfb } from './rfb-connect.js';
import { connectSerial } from './serial-connect.js';
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

/**
 * The serial port of any kind of target: its configured address (QEMU's or libvirt's socket
 * chardev); the same for every kind, since the port needs no password set on the hypervisor.
 */
async function openSerial<K extends ConsoleKind>(b: Backends, target: ResolvedConsoleTarget, signal: AbortSignal): Promise<BackendConnection<K>> {
  const address = target.console.serial;
  if (!address) throw unsupported('serial', target.console.kind);
  return (await connectSerial(address, { connectTimeoutMs: b.connectTimeoutMs, signal })) as BackendConnection<K>;
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
    if (opts.kind === 'serial') return openSerial(this.b, target, opts.signal);
    const conn = await connectRfb({
      host: c.host, port: c.port, password: target.password, auth: c.auth === 'vnc-password' ? 'vnc-password' : 'none', tls: c.tls,
      backendTls: this.b.tls, connectTimeoutMs: this.b.connectTimeoutMs, signal: opts.signal,
    });
    return conn as BackendConnection<K>;
  }
}

/** What a hypervisor driver does for the one-time password protocol; see {@link openWithOneTimePassword}. */
interface OneTimePasswordSteps {
  /** The lock's name: one VM. */
  readonly lockKey: string;
  /** The VM in messages. */
  readonly what: string;
  /** Where its VNC server is (may ask the hypervisor). */
  address(): Promise<{ host: string; port: number }>;
  /** Sets the VNC password, valid until `validToMs` (epoch ms). */
  set(password: string, validToMs: number): Promise<void>;
  /** Makes the password set last unusable (on its own deadline: the session's may have run out). */
  expire(): Promise<void>;
}

/**
 * The one-time password protocol of `qemu-qmp` and `libvirt`, under the VM's lock (QEMU holds
 * one VNC password, so the set and our authentication with it go together): draw a password, set
 * it with an expiry of a few seconds, authenticate at once, expire it.
 * NOTE: the password exists only in this scope: never stored, never logged, not kept.
 */
async function openWithOneTimePassword(b: Backends, target: ResolvedConsoleTarget, signal: AbortSignal, steps: OneTimePasswordSteps): Promise<VncConnection> {
  return locked(b.locks, steps.lockKey, signal, steps.what, async () => {
    const { host, port } = await steps.address();
    const password = oneTimePassword();
    let setFailed = false;
    try {
      try {
        // A crash of ours between the set and the expiry below leaves it valid this long.
        await steps.set(password, b.clock.now() + b.passwordSeconds * 1000);
      } catch (e) {
        setFailed = true;
        throw e;
      }
      return await connectRfb({
        host, port, password, auth: 'one-time-password', tls: target.console.tls, backendTls: b.tls, connectTimeoutMs: b.connectTimeoutMs, signal,
      });
    } finally {
      // NOTE: one connection per password: expired as soon as it has been used, or has failed,
      // or might have been set by a set that failed halfway (its expiry not set).
      await steps.expire().catch((e: unknown) => {
        const line = { server: target.serverId, vm: steps.what, error: (e as Error).message };
        if (setFailed) b.log.debug(line, 'expiring after a failed password set failed too');
        else b.log.warn(line, `could not expire the one-time VNC password at once; it expires in ${b.passwordSeconds} s`);
      });
    }
  });
}

class QemuQmpDriver implements BackendDriver {
  readonly targetKind = 'qemu-qmp';
  constructor(private readonly b: Backends) {}

  async open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>> {
    const c = target.console as QemuQmpTarget;
    if (opts.kind === 'serial') return openSerial(this.b, target, opts.signal);
    const b = this.b;
    // The monitor is left between the steps: QEMU's serves one client at a time, and others (an
    // operator, a management tool) may need it too. The lock keeps the steps together.
    const qmp = async (signal: AbortSignal, commands: Array<[string, Record<string, unknown>]>): Promise<void> => {
      const client = await QmpClient.connect(c.qmp, { timeoutMs: b.managementTimeoutMs, signal });
      try {
        for (const [command, args] of commands) await client.execute(command, args);
      } finally {
        client.close();
      }
    };
    const conn = await openWithOneTimePassword(b, target, opts.signal, {
      lockKey: `qemu-qmp ${c.qmp}`,
      what: `the VM behind ${c.qmp}`,
      address: async () => ({ host: c.host, port: c.port }),
      // QEMU (qapi/ui.json): "+N" is N seconds from now.
      set: (password) => qmp(opts.signal, [['set_password', { protocol: 'vnc', password }], ['expire_password', { protocol: 'vnc', time: `+${b.passwordSeconds}` }]]),
      // "now" is expiry time 0, in the past; connections already authenticated stay.
      expire: () => qmp(AbortSignal.timeout(b.managementTimeoutMs * 2), [['expire_password', { protocol: 'vnc', time: 'now' }]]),
    });
    return conn as BackendConnection<K>;
  }
}

class LibvirtDriver implements BackendDriver {
  readonly targetKind = 'libvirt';
  constructor(private readonly b: Backends) {}

  async open<K extends ConsoleKind>(target: ResolvedConsoleTarget, opts: OpenOptions<K>): Promise<BackendConnection<K>> {
    const c = target.console as LibvirtTarget;
    if (opts.kind === 'serial') return openSerial(this.b, target, opts.signal);
    const b = this.b;
    let graphics: VncGraphics | null = null;
    const conn = await openWithOneTimePassword(b, target, opts.signal, {
      lockKey: `libvirt ${c.uri} ${c.domain}`,
      what: `the domain ${c.domain}`,
      address: async () => {
        graphics = await b.virsh(c.uri, opts.signal).vncGraphics(c.domain);
        return { host: c.host ?? graphics.host(c.uri), port: graphics.port };
      },
      set: (password, validToMs) => b.virsh(c.uri, opts.signal).setVncPassword(c.domain, graphics!, password, validToMs),
      // libvirt has no "expire only": another random password replaces it, already expired (an
      // expiry in the past is QMP's "now" for libvirt).
      expire: () => b.virsh(c.uri, AbortSignal.timeout(b.managementTimeoutMs)).setVncPassword(c.domain, graphics!, oneTimePassword(), 1000),
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
