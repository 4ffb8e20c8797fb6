/**
 * One serial console session: a browser's WebSocket attached to a serial port this node holds
 * (src/serial/serial-hub.ts). Binary frames carry the port's bytes both ways (the browser's only
 * when this viewer types); text frames carry small JSON control messages:
 *
 * - to the browser: `{"type":"role","role":"writer"|"viewer","writer":<label>|null}` whenever who
 *   types changes (and once at the start);
 * - from the browser: `{"type":"take"}` takes over typing; `{"type":"resize","cols":n,"rows":n}`
 *   is accepted and ignored (a serial port has no size; the terminal wraps on the page).
 */
import type { RawData, WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import { BackendError, isConsoleError } from '../errors.js';
import type { Logger } from '../log.js';
import { SerialPortHeldElsewhereError, type SerialAttachment, type SerialViewer } from '../serial/serial-hub.js';
import { CloseCode, CloseReasonKey, type CloseCodeValue } from './close-codes.js';
import { defaultCloser, type SessionInfo, type SessionSummary } from './console-session.js';
import { bindBrowserSocket, type BrowserSocketOwner, type LiveSession } from './session-registry.js';

/** A viewer this far behind (bytes queued to its WebSocket) is closed at once (the hub pauses the port at 1 MiB). */
const MAX_BEHIND = 16 * 1024 * 1024;
/** Largest control message. */
const MAX_CONTROL = 256;

export type AttachSerial = (viewer: SerialViewer, signal: AbortSignal) => Promise<SerialAttachment>;

export interface SerialSessionHooks {
  onEstablished(s: LiveSession, setupMs: number): void;
  onClosed(s: LiveSession, summary: SessionSummary): void;
}

export class SerialSession implements LiveSession, BrowserSocketOwner {
  readonly startedAt: number;
  lastInputAt: number;
  alive = true;
  bytesToClient = 0;
  bytesToBackend = 0;
  /** Set before close() by whoever ends the session for someone (an operator's credential). */
  closedBy: string | null = null;
  private state: 'opening' | 'relay' | 'closed' = 'opening';
  private attachment: SerialAttachment | null = null;
  private readonly ended = new AbortController();
  readonly log: Logger;
  /** Keystrokes typed before the port was attached (a few bytes at most). */
  private early: Buffer[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly info: SessionInfo,
    private readonly attachSerial: AttachSerial,
    private readonly opts: { setupTimeoutMs: number; maxMessageBytes: number; label: string },
    private readonly hooks: SerialSessionHooks,
    private readonly clock: Clock,
    log: Logger,
  ) {
    this.startedAt = clock.now();
    this.lastInputAt = this.startedAt;
    this.log = log.child({ session: info.id, server: info.serverId, tokenRef: info.tokenRef, console: 'serial' });
    bindBrowserSocket(ws, this);
  }

  get established(): boolean {
    return this.state === 'relay';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  async start(): Promise<void> {
    const viewer: SerialViewer = {
      label: this.opts.label,
      onOutput: (b) => this.send(b),
      onRole: (role, writer) => this.sendControl({ type: 'role', role, writer }),
      onPortClosed: (reason) => this.close(CloseCode.BackendClosed, reason),
      backlog: () => this.ws.bufferedAmount,
      tooSlow: () => this.close(CloseCode.TooSlow, 'The page did not keep up with the serial console\'s output.'),
    };
    let att: SerialAttachment;
    try {
      att = await this.attachSerial(viewer, AbortSignal.any([AbortSignal.timeout(this.opts.setupTimeoutMs), this.ended.signal]));
    } catch (e) {
      if (this.closed) return;
      if (e instanceof SerialPortHeldElsewhereError) {
        this.log.warn({ holder: e.holder }, 'serial console refused: another node holds the port');
        return this.close(CloseCode.SerialPortBusy, 'Another node of the console service holds this server\'s serial port.');
      }
      this.log.warn({ code: isConsoleError(e) ? e.code : 'unknown', backend: this.info.backend, failure: e instanceof BackendError ? e.failure : undefined, backendReason: (e as Error)?.message },
        'console backend failed: the server\'s serial port could not be reached');
      return this.close(CloseCode.BackendUnreachable, 'The server\'s serial console could not be reached.');
    }
    if (this.closed) {
      att.detach();
      return;
    }
    this.attachment = att;
    this.state = 'relay';
    this.hooks.onEstablished(this, this.clock.now() - this.startedAt);
    if (att.history.length > 0) this.send(att.history);
    for (const b of this.early) this.type(b);
    this.early = [];
  }

  private send(b: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BEHIND) return this.close(CloseCode.TooSlow, 'The page did not keep up with the serial console\'s output.');
    this.bytesToClient += b.length;
    this.ws.send(b, { binary: true });
  }

  private sendControl(m: Record<string, unknown>): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(m), { binary: false });
  }

  private type(b: Buffer): void {
    const att = this.attachment;
    if (!att) return;
    if (att.write(b)) this.bytesToBackend += b.length;
  }

  /** @internal a message from the browser (its socket's listener). */
  onBrowserMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      this.lastInputAt = this.clock.now();
      if (this.state === 'opening') {
        if (this.early.reduce((n, b) => n + b.length, 0) + buf.length > 64 * 1024) return this.close(CloseCode.BadClientData, 'The browser sent too much before the serial console opened.');
        this.early.push(buf);
        return;
      }
      return this.type(buf);
    }
    if (buf.length > MAX_CONTROL) return this.close(CloseCode.BadClientData, 'The browser sent a control message that is too long.');
    let m: unknown;
    try {
      m = JSON.parse(buf.toString('utf8'));
    } catch {
      return this.close(CloseCode.BadClientData, 'The browser sent a control message that is not JSON.');
    }
    const type = m !== null && typeof m === 'object' ? (m as { type?: unknown }).type : undefined;
    if (type === 'take') {
      this.lastInputAt = this.clock.now();
      this.attachment?.takeOver();
    } else if (type !== 'resize') {
      return this.close(CloseCode.BadClientData, 'The browser sent an unknown control message.');
    }
  }

  close(code: CloseCodeValue, reason: string): void {
    if (this.state === 'closed') return;
    const established = this.state === 'relay';
    this.state = 'closed';
    this.ended.abort();
    this.early = [];
    this.attachment?.detach();
    this.attachment = null;
    const ws = this.ws;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      ws.close(code, reason.slice(0, 120));
      setTimeout(() => ws.terminate(), 2000).unref();
    }
    this.hooks.onClosed(this, {
      code, reason, reasonKey: CloseReasonKey[code], established, bytesToClient: this.bytesToClient,
      bytesToBackend: this.bytesToBackend, durationMs: this.clock.now() - this.startedAt, closedBy: this.closedBy ?? defaultCloser(code),
    });
  }
}
