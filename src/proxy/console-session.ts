/**
 * One console session: the RFB security proxy between a browser (WebSocket) and a server's VNC
 * server (TCP). The proxy authenticates to the backend itself and offers the browser security
 * type None only, so the backend's password never leaves the server side; then it relays both
 * ways with backpressure, validating every browser message on the way.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket, RawData } from 'ws';
import { BACKEND_EARLY_BYTES } from '../backends/rfb-connect.js';
import type { VncConnection } from '../backends/types.js';
import type { Clock } from '../clock.js';
import { BackendError, isConsoleError } from '../errors.js';
import type { Logger } from '../log.js';
import { bindBrowserSocket, type BrowserSocketOwner } from './session-registry.js';
import {
  ByteReader, ClientMessageFramer, ClientMessageType, Encoding, SecurityType, ServerCapabilityScanner, encodeServerInit, encodeSetEncodings,
  isUserInputAt, serverNegotiateSecurity, serverNegotiateVersion, serverReadClientInit, serverRefuseSecurity, type RfbVersion, type SetEncodingsMessage,
} from '../rfb/index.js';
import { CloseCode, CloseReasonKey, type CloseCodeValue } from './close-codes.js';
import type { SessionTap } from '../recording/recording-service.js';

/** ExtendedMouseButtons pseudo-encoding: changes PointerEvent's length once the server confirms it. */
const EXTENDED_MOUSE_BUTTONS = Encoding.ExtendedMouseButtons;
/**
 * Relay backpressure: the backend is not read while this much waits to be written to the browser
 * (`ws.bufferedAmount`: the WebSocket's queue plus the socket's buffer), until it is down to LOW_WATER.
 */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
export { BACKEND_EARLY_BYTES };
const SEND_BINARY = { binary: true } as const;
/** How long a browser may take to finish its handshake once the backend has gone. */
const BACKEND_GONE_GRACE_MS = 2000;

/** What is known of the server's announcements (ExtendedClipboard) while no scanner runs. */
interface ServerCaps {
  readonly done: boolean;
  readonly extendedClipboard: boolean;
}
/** No server byte yet: the scanner starts with the first one. */
const CAPS_PENDING: ServerCaps = { done: false, extendedClipboard: false };
const CAPS_ANNOUNCED: ServerCaps = { done: true, extendedClipboard: true };
const CAPS_NONE: ServerCaps = { done: true, extendedClipboard: false };

/**
 * The session a backend socket belongs to: its listeners are the four functions below, shared by
 * every session, so an idle session holds no closure (nor the handshake's state) for them.
 */
const OWNER = Symbol('session');
type OwnedStream = Duplex & { [OWNER]: ConsoleSession };

function onBackendStreamData(this: OwnedStream, d: Buffer): void {
  this[OWNER].backendData(d);
}

function onBackendStreamClose(this: OwnedStream): void {
  this[OWNER].backendClosed();
}

function onBackendStreamError(this: OwnedStream, e: Error): void {
  this[OWNER].log.debug({ err: e }, 'backend socket error');
}

function onBackendStreamDrain(this: OwnedStream): void {
  this[OWNER].ws.resume();
}

function abortOnTimeout(c: AbortController): void {
  // The reason AbortSignal.timeout() gives.
  c.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
}

function terminate(ws: WebSocket): void {
  ws.terminate();
}

/**
 * Opens the session's authenticated VNC connection (a backend driver, chosen by the target's kind:
 * the session does not know which). Rejects with BackendError; gives up when `signal` aborts.
 */
export type OpenBackend = (signal: AbortSignal) => Promise<VncConnection>;

export interface SessionInfo {
  readonly id: string;
  readonly serverId: string;
  readonly projectId: string;
  /** Shown to the browser as the desktop name (from the inventory, never from the backend). */
  readonly serverName: string;
  /** The console target as the operator reads it (`host:port`, or a libvirt URI and domain), for the log. */
  readonly backend: string;
  readonly tokenRef: string;
  /** When the session's token was issued (revocations end sessions of tokens issued before them). */
  readonly tokenIssuedAt: number;
  readonly clientAddress: string;
  /** The credential the token was issued through (`ak:<AK>`, `token:<hash>`), when known. */
  readonly issuedBy?: string | null;
  /** The user it was issued by, when known. */
  readonly issuedByUser?: string | null;
}

export interface SessionOptions {
  readonly handshakeTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** The session's recorder, when its recording policy records it. */
  readonly tap?: SessionTap | null;
}

export interface SessionSummary {
  readonly code: CloseCodeValue;
  readonly reason: string;
  readonly reasonKey: string;
  /** Whether the relay phase was reached. */
  readonly established: boolean;
  readonly bytesToClient: number;
  readonly bytesToBackend: number;
  readonly durationMs: number;
  /** Who or what ended the session: `browser`, `backend`, `proxy`, or the operator's credential. */
  readonly closedBy: string;
}

export interface SessionHooks {
  /** ServerInit went to the browser: the session is live. */
  onEstablished(s: ConsoleSession, handshakeMs: number): void;
  /** The session ended (exactly once). */
  onClosed(s: ConsoleSession, summary: SessionSummary): void;
}

/** Readable reasons; never text from the backend (it could be hostile, CVE-2017-18635). */
const BACKEND_REASONS = {
  BACKEND_UNREACHABLE: [CloseCode.BackendUnreachable, 'The server\'s VNC console could not be reached.'],
  BACKEND_AUTH_FAILED: [CloseCode.BackendAuthFailed, 'Authentication to the server\'s VNC console failed.'],
  BACKEND_PROTOCOL: [CloseCode.BackendProtocol, 'The server\'s VNC console answered with an unexpected protocol.'],
} as const;

/** What the operator reads in the log, by close code. */
const BACKEND_LOG: Record<number, string> = {
  [CloseCode.BackendUnreachable]: 'the server\'s VNC console could not be reached',
  [CloseCode.BackendAuthFailed]: 'could not log in to the server\'s VNC console',
  [CloseCode.BackendProtocol]: 'the server\'s VNC console broke the RFB protocol',
};

export class ConsoleSession implements BrowserSocketOwner {
  readonly startedAt: number;
  lastInputAt: number;
  /** Set false before each ping; a pong sets it back (dead browsers are found by the sweeper). */
  alive = true;
  bytesToClient = 0;
  bytesToBackend = 0;
  /** Set before close() by whoever ends the session for someone (an operator's credential). */
  closedBy: string | null = null;
  private state: 'handshake' | 'relay' | 'closed' = 'handshake';
  private backend: Duplex | null = null;
  /**
   * During the handshake only: aborted at its timeout or when the session closes (a backend
   * attempt in progress then gives up, and its locks go). Null once the relay runs.
   */
  private abort: AbortController | null = null;
  /** Opens the backend; dropped once called (it holds the target, its password included). */
  private openBackend: OpenBackend | null;
  private browserReader: ByteReader | null = new ByteReader({ maxReadLength: 64 });
  /** The backend's bytes until the relay starts (its handshake, then what waits for the browser). */
  private backendReader: ByteReader | null = null;
  /** The browser's messages in the relay (made at the first one). */
  private framer: ClientMessageFramer | null = null;
  /** What the server announced at the start of the relay (ExtendedClipboard): a scanner while it looks, then its answer. */
  private serverCaps: ServerCapabilityScanner | ServerCaps = CAPS_PENDING;
  private backendGone = false;
  private backendPaused = false;
  /** A call back from the recorder is awaited (it is asked once until it answers). */
  private awaitingRecorder = false;
  /** This session's logger, made at its first line (most sessions log nothing of their own). */
  private logger: Logger | null = null;
  private readonly tap: SessionTap | null;

  constructor(
    readonly ws: WebSocket,
    readonly info: SessionInfo,
    openBackend: OpenBackend,
    private readonly opts: SessionOptions,
    private readonly hooks: SessionHooks,
    private readonly clock: Clock,
    private readonly parentLog: Logger,
  ) {
    this.startedAt = clock.now();
    this.lastInputAt = this.startedAt;
    this.openBackend = openBackend;
    this.tap = opts.tap ?? null;
    bindBrowserSocket(ws, this);
  }

  /** The session's logger (its id, server and token reference on every line). */
  get log(): Logger {
    const i = this.info;
    return (this.logger ??= this.parentLog.child({ session: i.id, server: i.serverId, tokenRef: i.tokenRef }));
  }

  get established(): boolean {
    return this.state === 'relay';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** The session's recording, when it is recorded. */
  get recordingId(): string | null {
    return this.tap?.recordingId ?? null;
  }

  /** Runs the handshake on both sides, then relays until either side closes. */
  async start(): Promise<void> {
    // One controller for the handshake's timeout and the session's end (no AbortSignal.any, no
    // timer signal left behind): cleared once the handshake is over either way.
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(abortOnTimeout, this.opts.handshakeTimeoutMs, abort);
    timer.unref();
    try {
      await this.handshake(abort.signal);
    } finally {
      clearTimeout(timer);
      this.abort = null;
    }
  }

  /** Connects the backend and takes the browser through its handshake at once; then starts the relay. */
  private async handshake(signal: AbortSignal): Promise<void> {
    const backendReader = new ByteReader({ maxReadLength: 64 * 1024 });
    this.backendReader = backendReader;
    const writeBrowser = (b: Buffer): void => this.sendToBrowser(b);
    const versionP = serverNegotiateVersion(this.browserReader!, writeBrowser, { version: '3.8', signal });
    const backendP = this.connectBackend(signal, backendReader);
    const [version, backend] = await Promise.allSettled([versionP, backendP]);
    if (this.state === 'closed') return;
    // A browser that only ran out of time (it sent nothing wrong) while the backend failed as well:
    // the backend's failure is the one to report (a real page answers the version at once, so it
    // was the backend that held the handshake up, and a new URL would fail the same way).
    const browserOnlyTimedOut = version.status === 'rejected' && signal.aborted && version.reason === signal.reason;
    if (version.status === 'rejected' && !(browserOnlyTimedOut && backend.status === 'rejected')) {
      this.log.info({ err: version.reason }, 'browser handshake failed');
      return this.close(CloseCode.BadClientData, 'The browser did not complete the RFB handshake.');
    }
    if (backend.status === 'rejected') {
      const e = backend.reason as unknown;
      const [code, reason] = isConsoleError(e) && e.code in BACKEND_REASONS
        ? BACKEND_REASONS[e.code as keyof typeof BACKEND_REASONS]
        : BACKEND_REASONS.BACKEND_UNREACHABLE;
      // NOTE: the backend's own words go to our log only (sanitized, capped at 256 bytes by the
      // codec). At warn: a new console URL fails the same way until an operator acts. The server
      // id is in this logger's bindings.
      this.log.warn({ code: isConsoleError(e) ? e.code : 'unknown', backend: this.info.backend, failure: e instanceof BackendError ? e.failure : undefined, backendReason: (e as Error)?.message },
        `console backend failed: ${BACKEND_LOG[code]}`);
      if (version.status === 'fulfilled') serverRefuseSecurity(writeBrowser, version.value, reason);
      return this.close(code, reason);
    }
    if (version.status === 'rejected') return; // reported above (the type does not know it)
    try {
      await this.finishBrowserHandshake(version.value, signal);
    } catch (e) {
      if (this.closed) return;
      this.log.info({ err: e }, 'browser security handshake failed');
      return this.close(CloseCode.BadClientData, 'The browser did not complete the RFB handshake.');
    }
    if (this.closed) return;
    const init = backend.value.serverInit;
    // NOTE: the desktop name comes from our inventory, never from the backend.
    const serverInit = encodeServerInit({ ...init, name: this.info.serverName });
    this.sendToBrowser(serverInit);
    this.tap?.started(serverInit);
    this.state = 'relay';
    const leftoverBrowser = this.browserReader!.takeRemainder();
    this.browserReader = null;
    const leftoverBackend = backendReader.takeRemainder();
    this.backendReader = null;
    // Established before the held bytes go: relaying them may end the session (a close then
    // reports an established session, as it was).
    this.hooks.onEstablished(this, this.clock.now() - this.startedAt);
    if (leftoverBackend.length > 0) this.onBackendData(leftoverBackend);
    // Paused for the early-bytes cap: the relay's own backpressure takes over.
    if (this.backendPaused && this.ws.bufferedAmount <= LOW_WATER) this.resumeBackend();
    if (leftoverBrowser.length > 0) this.relayBrowserBytes(leftoverBrowser);
    if (this.backendGone) this.close(CloseCode.BackendClosed, 'The server\'s VNC connection closed.');
  }

  /** Opens the backend and takes its stream (listeners shared by every session, see OWNER). */
  private async connectBackend(signal: AbortSignal, backendReader: ByteReader): Promise<VncConnection> {
    const open = this.openBackend!;
    this.openBackend = null;
    const conn = await open(signal);
    const sock = conn.stream as OwnedStream;
    if (this.state === 'closed') {
      sock.destroy();
      throw new BackendError('BACKEND_UNREACHABLE', 'session closed during connect');
    }
    this.backend = sock;
    // The driver's handshake is done; what it read beyond ServerInit waits with what comes next.
    backendReader.push(conn.leftover);
    sock[OWNER] = this;
    sock.on('data', onBackendStreamData);
    sock.on('close', onBackendStreamClose);
    sock.on('error', onBackendStreamError);
    sock.on('drain', onBackendStreamDrain);
    if (this.parentLog.isLevelEnabled('debug')) this.log.debug({ backend: conn.info }, 'authenticated to the server\'s VNC console');
    // The driver hands the stream over paused.
    if (backendReader.bufferedLength > BACKEND_EARLY_BYTES) this.pauseBackend();
    else sock.resume();
    if (sock.destroyed) this.backendGoneDuringHandshake();
    return conn;
  }

  /** @internal bytes from the backend (its stream's listener). */
  backendData(d: Buffer): void {
    if (this.state === 'relay') this.onBackendData(d);
    else this.onEarlyBackendData(d);
  }

  /** @internal the backend's stream closed (its listener). */
  backendClosed(): void {
    this.backendReader?.end();
    // After the backend's handshake, a close is the end of the session, even while the
    // browser is still in its handshake.
    if (this.state === 'relay') this.close(CloseCode.BackendClosed, 'The server\'s VNC connection closed.');
    else if (this.state === 'handshake') this.backendGoneDuringHandshake();
  }

  /**
   * The backend hung up after its handshake while the browser's is still going: the browser may
   * finish (it then gets ServerInit, what the backend sent, and close 4205), but not for long.
   */
  private backendGoneDuringHandshake(): void {
    if (this.backendGone) return;
    this.backendGone = true;
    setTimeout(() => {
      if (this.state === 'handshake') this.close(CloseCode.BackendClosed, 'The server\'s VNC connection closed.');
    }, BACKEND_GONE_GRACE_MS).unref();
  }

  private async finishBrowserHandshake(version: RfbVersion, signal: AbortSignal): Promise<void> {
    // NOTE: the browser is offered None only; the proxy has already authenticated to the backend.
    await serverNegotiateSecurity(this.browserReader!, (b) => this.sendToBrowser(b), version, { securityTypes: [SecurityType.None], signal });
    await serverReadClientInit(this.browserReader!, { signal });
  }

  private sendToBrowser(b: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(b, { binary: true });
  }

  /** Backend bytes before the relay: held for the handshake, up to BACKEND_EARLY_BYTES. */
  private onEarlyBackendData(d: Buffer): void {
    const reader = this.backendReader;
    if (!reader) return;
    reader.push(d);
    // NOTE: a backend flooding while the browser's handshake goes on (or pipelining its own) is
    // not read beyond the cap: TCP pushes back on it, and the proxy holds at most the cap and
    // one read. It is read again once the relay has sent what was held.
    if (!this.backendPaused && reader.bufferedLength > BACKEND_EARLY_BYTES) this.pauseBackend();
  }

  private onBackendData(d: Buffer): void {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) return;
    this.bytesToClient += d.length;
    // Before it reaches the browser (which answers a caps message with its own extended messages).
    if (!this.serverCaps.done) this.scanServer(d);
    ws.send(d, SEND_BINARY, this.onSentToBrowser);
    // NOTE: a recorder that falls behind holds the backend too (recording integrity first: what
    // the browser saw is never left out of the recording); it calls back once caught up.
    if (this.tap?.server(d) === false) {
      if (!this.backendPaused) this.pauseBackend();
      this.awaitRecorder(this.tap);
    }
    // NOTE: measured on the WebSocket itself (its queue and its socket's buffer), so a browser
    // that stops reading holds at most HIGH_WATER plus one read of the backend's here.
    if (!this.backendPaused && this.ws.bufferedAmount > HIGH_WATER) this.pauseBackend();
  }

  /** Follows the server's first messages (the scanner exists from the first byte to its answer). */
  private scanServer(d: Buffer): void {
    const current = this.serverCaps;
    const scanner = current instanceof ServerCapabilityScanner ? current : new ServerCapabilityScanner();
    scanner.push(d);
    this.serverCaps = !scanner.done ? scanner : scanner.extendedClipboard ? CAPS_ANNOUNCED : CAPS_NONE;
  }

  /** One callback for every send (no closure per chunk): resumes the backend once the browser caught up. */
  private readonly onSentToBrowser = (): void => {
    if (!this.backendPaused || this.state !== 'relay' || this.ws.bufferedAmount > LOW_WATER) return;
    const tap = this.tap;
    if (!tap?.behind) this.resumeBackend();
    // The browser caught up while the recorder is behind, which it may have become with no read
    // of this session to hear it (a flush of others' records): it calls back when caught up.
    else this.awaitRecorder(tap);
  };

  private awaitRecorder(tap: SessionTap): void {
    if (this.awaitingRecorder) return;
    this.awaitingRecorder = true;
    tap.whenCaughtUp(this.onRecorderCaughtUp);
  }

  /** The recorder caught up: the backend is read again unless the browser is behind. */
  private readonly onRecorderCaughtUp = (): void => {
    this.awaitingRecorder = false;
    if (this.backendPaused && this.state === 'relay' && this.ws.bufferedAmount <= LOW_WATER) this.resumeBackend();
  };

  private pauseBackend(): void {
    this.backendPaused = true;
    this.backend?.pause();
  }

  private resumeBackend(): void {
    this.backendPaused = false;
    this.backend?.resume();
  }

  /** @internal a message from the browser (its socket's listener). */
  onBrowserMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    if (!isBinary) return this.close(CloseCode.BadClientData, 'Text frames are not part of the RFB protocol.');
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (this.state === 'handshake') {
      // NOTE: the browser's handshake is a few bytes; anything beyond the cap while we wait for the
      // backend is a flood, not RFB (it would otherwise sit in memory until the timeout).
      // The handshake is 14 bytes; a client may pipeline its first messages (one of up to
      // maxMessageBytes) behind it.
      if ((this.browserReader?.bufferedLength ?? 0) + buf.length > this.opts.maxMessageBytes + 64 * 1024) {
        return this.close(CloseCode.BadClientData, 'The browser sent too much before the handshake finished.');
      }
      this.browserReader?.push(buf);
      return;
    }
    this.relayBrowserBytes(buf);
  }

  private relayBrowserBytes(data: Buffer): void {
    const framer = (this.framer ??= new ClientMessageFramer({ maxCutTextLength: this.opts.maxMessageBytes }));
    // Bytes of an incomplete message held from earlier reads: then the messages are not a prefix of `data`.
    const heldBefore = framer.bufferedLength;
    // Framed and checked, every message of the chunk, before any is looked at, recorded or
    // relayed; no object per message (the framer's reused list says where each one is).
    let buf: Buffer;
    try {
      buf = framer.frame(data);
    } catch (e) {
      this.log.info({ err: e }, 'bad message from the browser');
      return this.close(CloseCode.BadClientData, 'The browser sent a malformed RFB message.');
    }
    const n = framer.framed;
    const backend = this.backend;
    if (n === 0 || !backend) return framer.forget();
    // The messages as they go on: null while each goes unchanged (they are then `data`'s first
    // bytes, written without a copy); a list once one is rewritten.
    let out: Buffer[] | null = heldBefore > 0 ? [] : null;
    const caps = this.serverCaps;
    const tap = this.tap;
    let input = false;
    for (let i = 0; i < n; i++) {
      const off = framer.offsetOf(i);
      const len = framer.lengthOf(i);
      if (!input && isUserInputAt(buf, off)) input = true;
      tap?.client(framer.decode(buf, i));
      let rewritten: Buffer | null = null;
      const type = buf[off];
      if (type === ClientMessageType.SetEncodings) {
        // Without parsing the server's stream the proxy cannot know when 7-byte PointerEvents
        // start; not asking for the extension keeps every PointerEvent 6 bytes (RFC 6143 7.5.5).
        // Once the server's first update has passed without an ExtendedClipboard announcement,
        // it is not asked for again (an announcement after that would go unseen).
        // A recorded session: only encodings its recording can be made seekable in (ZRLE, not Tight).
        const m = framer.decode(buf, i) as SetEncodingsMessage;
        const drop = (e: number): boolean => e === EXTENDED_MOUSE_BUTTONS || (e === Encoding.ExtendedClipboard && caps.done && !caps.extendedClipboard) || (tap !== null && !tap.allowsEncoding(e));
        if (m.encodings.some(drop)) rewritten = encodeSetEncodings(m.encodings.filter((e) => !drop(e)));
      } else if (type === ClientMessageType.ClientCutText && buf.readInt32BE(off + 4) < 0 && !caps.extendedClipboard) {
        // NOTE: a server that did not announce ExtendedClipboard reads the negative length as a
        // u32 (up to 4 GiB of text to wait for, or to allocate); QEMU drops the connection.
        framer.forget();
        this.log.info('extended clipboard message to a server that did not announce it');
        return this.close(CloseCode.BadClientData, 'The browser sent an extended clipboard message the server did not announce.');
      }
      // Unchanged messages before the first rewritten one are `data`'s first `off` bytes.
      if (out === null && rewritten !== null) out = off > 0 ? [buf.subarray(0, off)] : [];
      if (out !== null) out.push(rewritten ?? buf.subarray(off, off + len));
    }
    framer.forget();
    if (input) this.lastInputAt = this.clock.now();
    const rest = framer.bufferedLength;
    const chunk = out === null ? (rest === 0 ? buf : buf.subarray(0, buf.length - rest)) : out.length === 1 ? out[0]! : Buffer.concat(out);
    this.bytesToBackend += chunk.length;
    // A backend that does not read: the browser is not read either until it drains ('drain'
    // resumes it). What is held meanwhile: the socket's buffer, one browser read, and at most one
    // incomplete message in the framer (capped by maxMessageBytes).
    if (!backend.write(chunk)) this.ws.pause();
  }

  /** Ends the session with a code and reason the browser sees. Idempotent. */
  close(code: CloseCodeValue, reason: string): void {
    if (this.state === 'closed') return;
    const established = this.state === 'relay';
    this.state = 'closed';
    this.abort?.abort();
    this.abort = null;
    this.openBackend = null;
    // NOTE: what either peer sent and nobody will read is dropped now, not when the last
    // reference to this session goes (timers and socket listeners keep it for seconds).
    this.browserReader?.discard();
    this.browserReader = null;
    this.backendReader?.discard();
    this.backendReader = null;
    this.framer = null;
    this.serverCaps = CAPS_PENDING;
    this.backend?.destroy();
    this.backend = null;
    this.tap?.ended(CloseReasonKey[code]);
    const ws = this.ws;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      ws.close(code, reason.slice(0, 120));
      // A browser that never answers the close frame is cut off.
      setTimeout(terminate, 2000, ws).unref();
    }
    this.hooks.onClosed(this, {
      code, reason, reasonKey: CloseReasonKey[code], established, bytesToClient: this.bytesToClient,
      bytesToBackend: this.bytesToBackend, durationMs: this.clock.now() - this.startedAt,
      closedBy: this.closedBy ?? defaultCloser(code),
    });
  }
}

/** Who ends a session of this close code when nobody said: the browser, the backend or the proxy. */
export function defaultCloser(code: CloseCodeValue): string {
  if (code === CloseCode.Normal || code === CloseCode.BadClientData) return 'browser';
  if (code === CloseCode.BackendClosed || code === CloseCode.BackendUnreachable || code === CloseCode.BackendAuthFailed || code === CloseCode.BackendProtocol) return 'backend';
  return 'proxy';
}
