/**
 * One viewer of the demo server: the RFB handshake, then its messages through the framer, and
 * FramebufferUpdates when it asks for them (RFC 6143 7.5.3: one update per request; incremental
 * requests get only what changed and wait while nothing has).
 */
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { isConsoleError } from '../errors.js';
import { ByteReader } from '../rfb/byte-reader.js';
import { ClientMessageFramer } from '../rfb/client-message-framer.js';
import type { ClientMessage } from '../rfb/client-messages.js';
import { Encoding, SecurityType } from '../rfb/constants.js';
import { encodeServerInit } from '../rfb/handshake-messages.js';
import { PixelConverter, RGB888_PIXEL_FORMAT } from '../rfb/pixel-format.js';
import { serverHandshake, type ServerSecurityType } from '../rfb/server-handshake.js';
import { encodeCopyRect, encodeFramebufferUpdateHeader, encodeRectangleHeader } from '../rfb/server-messages.js';
import { ZrleEncoder } from '../rfb/zrle-encoder.js';
import { DamageMap, type CellRect } from './damage-map.js';
import type { ConsoleListener, DemoConsole } from './demo-console.js';

/** What a session needs from its server. */
export interface SessionContext {
  readonly console: DemoConsole;
  readonly name: string;
  readonly password: string | undefined;
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
  /** A key was pressed: the server applies it to the shared console. */
  keyEvent(key: number, down: boolean): void;
  /** The session has ended. */
  closed(session: DemoClientSession): void;
}

interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Above this much unsent output the session stops reading its client until the socket drains. */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;

export class DemoClientSession implements ConsoleListener {
  private state: 'handshake' | 'running' | 'closed' = 'handshake';
  private readonly reader = new ByteReader({ maxReadLength: 64 });
  private readonly framer = new ClientMessageFramer({ extensions: false });
  private readonly damage: DamageMap;
  private converter = new PixelConverter(RGB888_PIXEL_FORMAT);
  private zrle: ZrleEncoder | undefined;
  private useZrle = false;
  private canCopyRect = false;
  /** The outstanding incremental request, if any (RFC 6143 7.5.3). */
  private pending: PixelRect | undefined;
  private readonly log: Logger;

  constructor(
    private readonly sock: Socket,
    private readonly ctx: SessionContext,
  ) {
    this.log = ctx.logger;
    this.damage = new DamageMap(ctx.console.cols, ctx.console.rows);
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('drain', () => sock.resume());
    sock.on('error', (err) => this.log.debug({ err }, 'demo VNC client socket error'));
    sock.on('close', () => this.onClose());
    void this.handshake();
  }

  /** ConsoleListener: a cell changed on the shared screen. */
  cellChanged(row: number, col: number): void {
    this.damage.markCell(row, col);
  }

  /** ConsoleListener: the text scrolled. */
  scrolled(top: number, bottom: number): void {
    this.damage.scrolled(top, bottom, this.canCopyRect);
  }

  /** Sends an update if one is requested and something changed. */
  flush(): void {
    if (this.state !== 'running' || !this.pending || this.damage.isEmpty) return;
    const area = this.pending;
    this.pending = undefined;
    if (!this.sendIncremental(area)) this.pending = area;
  }

  /** Ends the session (server shutdown). */
  close(): void {
    this.sock.destroy();
  }

  private async handshake(): Promise<void> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error('handshake timed out')), this.ctx.handshakeTimeoutMs);
    const securityTypes: ServerSecurityType[] = this.ctx.password === undefined ? [SecurityType.None] : [SecurityType.VncAuthentication];
    try {
      const result = await serverHandshake(this.reader, (b) => this.write(b), {
        securityTypes,
        password: this.ctx.password,
        failureReason: 'wrong password',
        signal: timeout.signal,
      });
      if (this.state === 'closed') return;
      const c = this.ctx.console;
      this.write(encodeServerInit({ width: c.width, height: c.height, pixelFormat: RGB888_PIXEL_FORMAT, name: this.ctx.name }));
      // Every client shares the one screen; a ClientInit asking for exclusive use is not honoured.
      this.log.info({ version: result.version, securityType: result.securityType, shared: result.shared }, 'demo VNC client connected');
      this.state = 'running';
      c.addListener(this);
      this.onData(this.reader.takeRemainder());
    } catch (err) {
      this.end(`handshake failed: ${describe(err)}`, isConsoleError(err) && err.code === 'AUTH_INVALID' ? 'info' : 'warn');
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(data: Buffer): void {
    if (this.state === 'handshake') {
      this.reader.push(data);
      return;
    }
    if (this.state !== 'running' || data.length === 0) return;
    let msgs: ClientMessage[];
    try {
      msgs = this.framer.push(data);
    } catch (err) {
      this.end(`malformed client message: ${describe(err)}`, 'warn');
      return;
    }
    for (const m of msgs) {
      if (this.state !== 'running') return;
      this.handle(m);
    }
  }

  private handle(m: ClientMessage): void {
    switch (m.type) {
      case 'SetPixelFormat':
        if (!m.pixelFormat.trueColour) {
          this.end('client asked for a colour-map pixel format, which this server does not support', 'warn');
          return;
        }
        this.converter = new PixelConverter(m.pixelFormat);
        return;
      case 'SetEncodings': {
        // RFC 6143 7.5.2: the client's order is its preference; Raw is always allowed.
        const first = m.encodings.find((e) => e === Encoding.ZRLE || e === Encoding.Raw);
        this.useZrle = first === Encoding.ZRLE;
        if (this.useZrle) this.zrle ??= new ZrleEncoder();
        const couldCopy = this.canCopyRect;
        this.canCopyRect = m.encodings.includes(Encoding.CopyRect);
        if (couldCopy && !this.canCopyRect) this.damage.dropScroll();
        return;
      }
      case 'FramebufferUpdateRequest':
        this.request(m.incremental, { x: m.x, y: m.y, width: m.width, height: m.height });
        return;
      case 'KeyEvent':
        this.ctx.keyEvent(m.key, m.down);
        return;
      default:
        // PointerEvent and ClientCutText: accepted and ignored (the console has no mouse or clipboard).
        return;
    }
  }

  private request(incremental: boolean, asked: PixelRect): void {
    const c = this.ctx.console;
    const x = Math.min(asked.x, c.width);
    const y = Math.min(asked.y, c.height);
    const area = { x, y, width: Math.min(asked.width, c.width - x), height: Math.min(asked.height, c.height - y) };
    if (!incremental) {
      this.sendFull(area);
      return;
    }
    // A second incremental request before we answered: widen the outstanding one.
    const p = this.pending;
    this.pending = p ? union(p, area) : area;
    this.flush();
  }

  /** Non-incremental: the whole requested area, now (the client lost it). */
  private sendFull(area: PixelRect): void {
    const parts: Buffer[] = [];
    this.damage.dropScroll();
    if (area.width > 0 && area.height > 0) {
      parts.push(this.encodeRect(area));
      this.damage.clean(this.cellsInside(area));
    }
    this.send(parts);
  }

  /** Incremental: what changed inside `area`. Returns false when nothing did. */
  private sendIncremental(area: PixelRect): boolean {
    const c = this.ctx.console;
    const parts: Buffer[] = [];
    const scroll = this.damage.pendingScroll;
    if (scroll) {
      const region = { x: 0, y: scroll.top * c.cellHeight, width: c.cols * c.cellWidth, height: (scroll.bottom - scroll.top) * c.cellHeight };
      if (contains(area, region)) {
        this.damage.takeScroll();
        // RFC 6143 7.7.2: CopyRect copies from the client's own framebuffer.
        const moved = scroll.count * c.cellHeight;
        const header = encodeRectangleHeader({ x: 0, y: region.y, width: region.width, height: region.height - moved, encoding: Encoding.CopyRect });
        parts.push(Buffer.concat([header, encodeCopyRect(0, region.y + moved)]));
      } else {
        this.damage.dropScroll();
      }
    }
    for (const cells of this.damage.takeRects(this.cellsTouching(area))) {
      parts.push(this.encodeRect({ x: cells.col * c.cellWidth, y: cells.row * c.cellHeight, width: cells.cols * c.cellWidth, height: cells.rows * c.cellHeight }));
    }
    if (parts.length === 0) return false;
    this.send(parts);
    return true;
  }

  /** Rectangle header and body in the client's pixel format and preferred encoding. */
  private encodeRect(r: PixelRect): Buffer {
    const fb = this.ctx.console.framebuffer;
    const stride = this.ctx.console.width;
    if (this.useZrle && this.zrle) {
      const body = this.zrle.encode(fb, stride, r.x, r.y, r.width, r.height, this.converter);
      return Buffer.concat([encodeRectangleHeader({ ...r, encoding: Encoding.ZRLE }), body]);
    }
    return Buffer.concat([encodeRectangleHeader({ ...r, encoding: Encoding.Raw }), this.converter.encodeRect(fb, stride, r.x, r.y, r.width, r.height)]);
  }

  /** Writes one FramebufferUpdate made of `rects` (each an encoded rectangle, header included). */
  private send(rects: Buffer[]): void {
    const ok = this.write(Buffer.concat([encodeFramebufferUpdateHeader(rects.length), ...rects]));
    if (!ok && this.sock.writableLength > WRITE_HIGH_WATER) this.sock.pause();
  }

  private write(buf: Buffer): boolean {
    if (this.state === 'closed' || this.sock.destroyed) return false;
    return this.sock.write(buf);
  }

  /** Cells wholly inside a pixel area. */
  private cellsInside(a: PixelRect): CellRect {
    return this.cellSpan(a, Math.ceil, Math.floor);
  }

  /** Cells a pixel area touches at all. */
  private cellsTouching(a: PixelRect): CellRect {
    return this.cellSpan(a, Math.floor, Math.ceil);
  }

  /** The cell rectangle from a pixel area, rounding its start and end edges as given. */
  private cellSpan(a: PixelRect, roundStart: (n: number) => number, roundEnd: (n: number) => number): CellRect {
    const c = this.ctx.console;
    const col = roundStart(a.x / c.cellWidth);
    const row = roundStart(a.y / c.cellHeight);
    const right = Math.min(c.cols, roundEnd((a.x + a.width) / c.cellWidth));
    const bottom = Math.min(c.rows, roundEnd((a.y + a.height) / c.cellHeight));
    return { col, row, cols: Math.max(0, right - col), rows: Math.max(0, bottom - row) };
  }

  /** Closes this client, logging why; nothing else is affected. */
  private end(reason: string, level: 'info' | 'warn'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.log[level]({ reason }, 'closing demo VNC client');
    this.sock.end();
    // A peer that does not finish the close is cut off.
    setTimeout(() => this.sock.destroy(), 1000).unref();
  }

  private onClose(): void {
    this.state = 'closed';
    this.reader.end();
    this.ctx.console.removeListener(this);
    this.ctx.closed(this);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function union(a: PixelRect, b: PixelRect): PixelRect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

function contains(outer: PixelRect, inner: PixelRect): boolean {
  return outer.x <= inner.x && outer.y <= inner.y && outer.x + outer.width >= inner.x + inner.width && outer.y + outer.height >= inner.y + inner.height;
}
