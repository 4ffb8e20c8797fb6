/**
 * The built-in demo VNC server: an RFB 3.3/3.7/3.8 server showing a text console, for trying the
 * console service without a hypervisor and as an honest peer in tests. Built on src/rfb only.
 */
import net from 'node:net';
import { once } from 'node:events';
import { systemClock, type Clock } from '../clock.js';
import { silentLogger, type Logger } from '../log.js';
import { loadDefaultFont, type BitmapFont } from './bitmap-font.js';
import { DemoClientSession, type SessionContext } from './demo-client-session.js';
import { DemoConsole } from './demo-console.js';

/** Options of a {@link DemoVncServer}. */
export interface DemoVncServerOptions {
  /** Shown as the desktop name, in the boot log and at the login prompt. */
  name: string;
  /** VNC Authentication with this password when set; security type None otherwise. NOTE: never logged. */
  password?: string | undefined;
  /** Default 800. */
  width?: number;
  /** Default 480. */
  height?: number;
  /** Time shown on the status line; default the system clock. */
  clock?: Clock;
  logger?: Logger;
  /** Font; default GalmuriMono11 from the `galmuri` package. */
  font?: BitmapFont;
  /** A client that has not finished the handshake by then is closed; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Connections beyond this are closed at once; default 64. */
  maxClients?: number;
  /** Cursor blink (and status-line refresh) period; default 500 ms. */
  blinkIntervalMs?: number;
}

export class DemoVncServer {
  private readonly server: net.Server;
  private readonly sessions = new Set<DemoClientSession>();
  private readonly screen: DemoConsole;
  private readonly ctx: SessionContext;
  private readonly logger: Logger;
  private readonly maxClients: number;
  private readonly blinkIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private connectionCount = 0;

  constructor(opts: DemoVncServerOptions) {
    this.logger = opts.logger ?? silentLogger();
    this.maxClients = opts.maxClients ?? 64;
    this.blinkIntervalMs = opts.blinkIntervalMs ?? 500;
    // RFC 6143 7.2.2: VNC Authentication uses a DES key of 8 bytes; the rest of a password is ignored.
    if (opts.password !== undefined && Buffer.byteLength(opts.password, 'latin1') > 8) {
      this.logger.warn('demo VNC password is longer than 8 characters: VNC authentication uses only the first 8');
    }
    this.screen = new DemoConsole({
      name: opts.name,
      width: opts.width ?? 800,
      height: opts.height ?? 480,
      font: opts.font ?? loadDefaultFont(),
      clock: opts.clock ?? systemClock,
    });
    // The server listens too, to answer waiting update requests once a change is complete.
    this.screen.addListener({ cellChanged: () => this.scheduleFlush(), scrolled: () => this.scheduleFlush() });
    this.ctx = {
      console: this.screen,
      name: opts.name,
      password: opts.password,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      logger: this.logger,
      keyEvent: (key, down) => this.screen.handleKey(key, down),
      closed: (s) => this.sessions.delete(s),
    };
    this.server = net.createServer((sock) => this.accept(sock));
  }

  /**
   * Changes the VNC password for connections accepted from now on (`undefined`: security type
   * None), as QEMU's QMP `set_password` does. NOTE: never logged.
   */
  setPassword(password: string | undefined): void {
    (this.ctx as { password: string | undefined }).password = password;
  }

  /** Open client connections (handshaking or running). */
  get clientCount(): number {
    return this.sessions.size;
  }

  /** The console being shown (tests read its text). */
  get console(): DemoConsole {
    return this.screen;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async listen(port: number, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    this.timer = setInterval(() => {
      this.screen.toggleCursor();
      this.screen.refreshStatus();
    }, this.blinkIntervalMs);
    this.timer.unref();
    const addr = this.server.address() as net.AddressInfo;
    this.logger.info({ host: addr.address, port: addr.port }, 'demo VNC server listening');
    return { host: addr.address, port: addr.port };
  }

  /** Stops listening and closes every client. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    await closed;
  }

  private accept(sock: net.Socket): void {
    const id = ++this.connectionCount;
    if (this.sessions.size >= this.maxClients) {
      this.logger.warn({ conn: id, maxClients: this.maxClients }, 'demo VNC server full: connection closed');
      sock.destroy();
      return;
    }
    const logger = this.logger.child({ conn: id, remote: `${sock.remoteAddress}:${sock.remotePort}` });
    this.sessions.add(new DemoClientSession(sock, { ...this.ctx, logger }));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const s of this.sessions) s.flush();
    });
  }
}
