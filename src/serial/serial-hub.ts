/**
 * The serial ports this node holds. A port is opened once (the first viewer, or the first output
 * call) and held: its output goes into a ring of the last 1 MiB, is fanned out to every viewer of
 * this node and saved to the store about once a second (so every node answers output calls),
 * while the node renews its claim on the port there. At most one viewer types at a time.
 *
 * Why hold the connection rather than read QEMU's chardev `logfile`: the log file is on the
 * hypervisor, which the service reaches only over sockets (TCP, or a unix socket on the same host),
 * and libvirt targets have no such file we could read; holding the socket works the same for every
 * driver and gives viewers and the output API the very same bytes.
 *
 * A fleet: QEMU's socket chardev serves one client at a time, so a port is held by one node, the
 * one whose claim is in the store (renewed every second, lapsing after `leaseMs` when the node is
 * gone). Another node answers output calls from the store (at most a second behind) and refuses
 * a viewer with SerialPortHeldElsewhere (the page says so): route serial consoles of a server to
 * one proxy node, or run serial consoles on one node (docs/deploy.md).
 */
import type { BackendOpener, SerialConnection } from '../backends/types.js';
import type { Clock } from '../clock.js';
import { ConsoleError } from '../errors.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { OutputRing, SERIAL_OUTPUT_BYTES, type OutputSlice } from './output-ring.js';
import type { SerialOutputStore } from './types.js';

/** What a viewer of a serial port is told. */
export interface SerialViewer {
  /** Shown to other viewers as who types (e.g. `viewer 2 (10.0.0.7)`). */
  readonly label: string;
  /** Output of the port (after the history it was given when attached). */
  onOutput(b: Buffer): void;
  /** Who types now: this viewer (`writer`) or another (`viewer`, with the writer's label, or null when nobody types). */
  onRole(role: 'writer' | 'viewer', writer: string | null): void;
  /** The port closed (the VM went away, the server changed, another node took it). */
  onPortClosed(reason: string): void;
  /** Bytes sent to this viewer and not yet written to its connection. */
  backlog(): number;
  /** This viewer held the port up for too long: it is ended (the others go on). */
  tooSlow(): void;
}

/**
 * Backpressure of the fan-out: the port is not read while a viewer has more than HIGH_WATER
 * waiting, until every viewer is below LOW_WATER (QEMU then holds the guest's serial writes, as a
 * UART would). A viewer that keeps the port held for SLOW_VIEWER_MS is ended.
 */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
const SLOW_VIEWER_MS = 10_000;
export const SERIAL_HIGH_WATER = HIGH_WATER;

/** A viewer's handle on a port. */
export interface SerialAttachment {
  /** The output kept so far (up to 1 MiB), to show before what comes next. */
  readonly history: Buffer;
  /** Sends keystrokes to the VM: only the writer's are sent; false when this viewer does not type. */
  write(b: Buffer): boolean;
  /** Takes over typing (the previous writer becomes a viewer and is told). */
  takeOver(): void;
  detach(): void;
}

/** The port is held by another node of the fleet. */
export class SerialPortHeldElsewhereError extends ConsoleError {
  constructor(readonly holder: string) {
    super('BACKEND_UNREACHABLE', `the serial port is held by node ${holder}`);
  }
}

export interface SerialHubOptions {
  readonly nodeId: string;
  /** How long a claim lasts unless renewed (default 15 s). */
  readonly leaseMs?: number;
  /** How long a port is held with nobody watching and no output call (default 1 h). */
  readonly holdMs?: number;
  /** How often output is saved and claims renewed (default 1 s). */
  readonly saveIntervalMs?: number;
  readonly capacity?: number;
  /** How long a viewer may hold the port paused before it is ended (default 10 s). */
  readonly slowViewerMs?: number;
}

interface Entry {
  viewer: SerialViewer;
  attachedAt: number;
}

class HeldPort {
  ring: OutputRing;
  conn: SerialConnection | null = null;
  readonly viewers: Entry[] = [];
  writer: Entry | null = null;
  lastUsedAt: number;
  dirty = false;
  closed = false;
  /** When the port was paused for a viewer that is behind (0: reading). */
  pausedAt = 0;
  resumeTimer: NodeJS.Timeout | null = null;
  /** When this node took the port (a change made before it does not concern this connection). */
  readonly openedAt: number;
  constructor(readonly serverId: string, readonly consoleRevision: number, ring: OutputRing, now: number) {
    this.ring = ring;
    this.lastUsedAt = now;
    this.openedAt = now;
  }
}

export class SerialHub {
  private readonly ports = new Map<string, HeldPort>();
  /** Ports being opened: concurrent callers wait for the same attempt. */
  private readonly opening = new Map<string, Promise<HeldPort>>();
  /** Ports let go whose last save and release are still being written (a new claim waits for them). */
  private readonly releasing = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private saving = false;
  private readonly leaseMs: number;
  private readonly holdMs: number;
  private readonly capacity: number;

  constructor(
    private readonly deps: { backends: BackendOpener; inventory: InventoryService; store: SerialOutputStore; clock: Clock; log: Logger; metrics?: Metrics },
    private readonly opts: SerialHubOptions,
  ) {
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.holdMs = opts.holdMs ?? 3600_000;
    this.capacity = opts.capacity ?? SERIAL_OUTPUT_BYTES;
    this.timer = setInterval(() => void this.tick(), opts.saveIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Ports held by this node now. */
  get heldCount(): number {
    return this.ports.size;
  }

  /** Whether this node holds the server's port now. */
  holds(serverId: string): boolean {
    return this.ports.has(serverId);
  }

  /**
   * Attaches a viewer to the server's port, opening it when this node does not hold it yet.
   * Rejects with BackendError (the port cannot be reached), SerialPortHeldElsewhereError, or a
   * ConsoleError from the store.
   */
  async attach(server: Server, viewer: SerialViewer, signal: AbortSignal): Promise<SerialAttachment> {
    const port = await this.open(server, signal);
    const entry: Entry = { viewer, attachedAt: this.deps.clock.now() };
    port.viewers.push(entry);
    port.lastUsedAt = entry.attachedAt;
    // The first viewer types; the others watch until they take over (or the writer leaves).
    if (!port.writer) port.writer = entry;
    const history = port.ring.snapshot();
    queueMicrotask(() => this.announce(port));
    return {
      history: Buffer.from(history),
      write: (b) => {
        if (port.closed || port.writer !== entry || !port.conn) return false;
        port.lastUsedAt = this.deps.clock.now();
        port.conn.stream.write(b);
        return true;
      },
      takeOver: () => {
        if (port.closed || !port.viewers.includes(entry) || port.writer === entry) return;
        port.writer = entry;
        this.announce(port);
      },
      detach: () => {
        const i = port.viewers.indexOf(entry);
        if (i < 0) return;
        port.viewers.splice(i, 1);
        port.lastUsedAt = this.deps.clock.now();
        if (port.writer === entry) {
          // The viewer watching longest types next.
          port.writer = port.viewers[0] ?? null;
          this.announce(port);
        }
      },
    };
  }

  /**
   * The output kept for a server from `cursor` on (all of it without one). From the port when
   * this node holds it or can take it (`connect`: the server runs), else from the store (saved by
   * the node holding it).
   */
  async output(server: Server, cursor: number | undefined, signal: AbortSignal, connect = true): Promise<OutputSlice & { live: boolean }> {
    let port = this.ports.get(server.id);
    if (!port && connect && server.console.serial) {
      try {
        port = await this.open(server, signal);
      } catch (e) {
        // Held elsewhere, or unreachable now: what the store kept still answers.
        this.deps.log.debug({ server: server.id, error: (e as Error).message }, 'serial output read from the store');
      }
    }
    if (port) {
      port.lastUsedAt = this.deps.clock.now();
      return { ...port.ring.since(cursor), live: true };
    }
    const rec = await this.deps.store.getSerialOutput(server.id);
    const ring = new OutputRing(this.capacity, rec ? { endOffset: rec.endOffset, data: rec.data } : undefined);
    return { ...ring.since(cursor), live: false };
  }

  private announce(port: HeldPort): void {
    const writer = port.writer?.viewer.label ?? null;
    for (const e of port.viewers) {
      try {
        e.viewer.onRole(e === port.writer ? 'writer' : 'viewer', writer);
      } catch (err) {
        this.deps.log.debug({ err }, 'serial viewer failed');
      }
    }
  }

  private open(server: Server, signal: AbortSignal): Promise<HeldPort> {
    const held = this.ports.get(server.id);
    if (held && held.consoleRevision === server.consoleRevision) return Promise.resolve(held);
    if (held) this.closePort(held, 'The server\'s console was moved.');
    let p = this.opening.get(server.id);
    if (!p) {
      p = this.connect(server, signal).finally(() => this.opening.delete(server.id));
      this.opening.set(server.id, p);
    }
    return p;
  }

  private async connect(server: Server, signal: AbortSignal): Promise<HeldPort> {
    const { store, clock, nodeId } = { store: this.deps.store, clock: this.deps.clock, nodeId: this.opts.nodeId };
    await this.releasing.get(server.id);
    const now = clock.now();
    if (!(await store.claimSerialPort(server.id, nodeId, now, now + this.leaseMs))) {
      const rec = await store.getSerialOutput(server.id);
      throw new SerialPortHeldElsewhereError(rec?.holder ?? 'unknown');
    }
    let conn: SerialConnection;
    try {
      conn = await this.deps.backends.open(this.deps.inventory.resolveTarget(server), { kind: 'serial', signal });
    } catch (e) {
      await store.releaseSerialPort(server.id, nodeId).catch(() => undefined);
      throw e;
    }
    // The output an earlier holder saved goes on: cursors stay valid across nodes and restarts.
    const rec = await store.getSerialOutput(server.id).catch(() => null);
    const port = new HeldPort(server.id, server.consoleRevision, new OutputRing(this.capacity, rec ? { endOffset: rec.endOffset, data: rec.data } : undefined), clock.now());
    port.conn = conn;
    this.ports.set(server.id, port);
    this.deps.metrics?.serialPortsHeld.set(this.ports.size);
    const sock = conn.stream;
    sock.on('data', (d: Buffer) => {
      port.ring.append(d);
      port.dirty = true;
      this.deps.metrics?.serialOutputBytes.inc(d.length);
      for (const e of port.viewers) e.viewer.onOutput(d);
      if (port.pausedAt === 0 && port.viewers.some((e) => e.viewer.backlog() > HIGH_WATER)) this.pause(port);
    });
    sock.on('error', (e) => this.deps.log.debug({ err: e, server: server.id }, 'serial port socket error'));
    sock.on('close', () => this.closePort(port, 'The server\'s serial port closed.'));
    sock.resume();
    this.deps.log.info({ server: server.id, serial: server.console.serial }, 'serial port held');
    return port;
  }

  private pause(port: HeldPort): void {
    port.pausedAt = this.deps.clock.now();
    port.conn?.stream.pause();
    port.resumeTimer = setInterval(() => {
      const behind = port.viewers.filter((e) => e.viewer.backlog() > LOW_WATER);
      if (behind.length > 0 && this.deps.clock.now() - port.pausedAt < (this.opts.slowViewerMs ?? SLOW_VIEWER_MS)) return;
      // Still behind after SLOW_VIEWER_MS: those viewers go, the others read on.
      for (const e of behind) e.viewer.tooSlow();
      if (port.resumeTimer) clearInterval(port.resumeTimer);
      port.resumeTimer = null;
      port.pausedAt = 0;
      if (!port.closed) port.conn?.stream.resume();
    }, 10);
    port.resumeTimer.unref();
  }

  /**
   * Closes a server's port here (the server stopped, was deleted or its console moved). With
   * `changedAt` (a change read from the change feed, perhaps late: this node's own changes come
   * back through it too), a port taken after the change is left alone: it was taken for the
   * server as it is now, e.g. started again.
   */
  release(serverId: string, reason: string, changedAt?: number): void {
    const port = this.ports.get(serverId);
    if (port && (changedAt === undefined || port.openedAt <= changedAt)) this.closePort(port, reason);
  }

  private closePort(port: HeldPort, reason: string): void {
    if (port.closed) return;
    port.closed = true;
    if (port.resumeTimer) clearInterval(port.resumeTimer);
    if (this.ports.get(port.serverId) === port) this.ports.delete(port.serverId);
    this.deps.metrics?.serialPortsHeld.set(this.ports.size);
    port.conn?.stream.destroy();
    for (const e of [...port.viewers]) e.viewer.onPortClosed(reason);
    port.viewers.length = 0;
    port.writer = null;
    const now = this.deps.clock.now();
    const save = port.dirty
      ? this.deps.store.saveSerialOutput(port.serverId, this.opts.nodeId, { endOffset: port.ring.endOffset, data: port.ring.snapshot(), now, heldUntil: 0 })
      : Promise.resolve(true);
    const done = save.then(() => this.deps.store.releaseSerialPort(port.serverId, this.opts.nodeId))
      .catch((e: unknown) => this.deps.log.warn({ server: port.serverId, error: (e as Error).message }, 'could not save serial output when letting go of the port'))
      .finally(() => {
        if (this.releasing.get(port.serverId) === done) this.releasing.delete(port.serverId);
      });
    this.releasing.set(port.serverId, done);
    this.deps.log.info({ server: port.serverId, reason }, 'serial port let go');
  }

  /** Saves what is new, renews claims, lets go of ports nobody used for `holdMs`. */
  async tick(): Promise<void> {
    if (this.saving) return;
    this.saving = true;
    try {
      const now = this.deps.clock.now();
      for (const port of [...this.ports.values()]) {
        if (port.viewers.length === 0 && now - port.lastUsedAt >= this.holdMs) {
          this.closePort(port, 'Nobody used the serial port for a while.');
          continue;
        }
        const dirty = port.dirty;
        port.dirty = false;
        try {
          const kept = dirty
            ? await this.deps.store.saveSerialOutput(port.serverId, this.opts.nodeId, { endOffset: port.ring.endOffset, data: port.ring.snapshot(), now, heldUntil: now + this.leaseMs })
            : await this.deps.store.claimSerialPort(port.serverId, this.opts.nodeId, now, now + this.leaseMs);
          if (!kept) this.closePort(port, 'Another node of the service took the serial port.');
        } catch (e) {
          port.dirty ||= dirty;
          this.deps.log.warn({ server: port.serverId, error: (e as Error).message }, 'could not save serial output; trying again');
        }
      }
    } finally {
      this.saving = false;
    }
  }

  /** Lets go of every port (shutdown), saving their output. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const port of [...this.ports.values()]) this.closePort(port, 'The console service is shutting down.');
    await Promise.all([...this.releasing.values()]);
  }
}
