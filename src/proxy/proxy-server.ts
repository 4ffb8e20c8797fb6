/**
 * The console proxy: serves the console page, answers the page's token pre-check, and accepts
 * console WebSockets after every check has passed (refusals are plain HTTP answers, never an
 * accepted socket). Sessions are followed for idle time, duration and liveness, closed when their
 * server changes anywhere in the fleet, and drained on shutdown.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Server as TlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Auditor } from '../audit/auditor.js';
import type { BackendOpener } from '../backends/types.js';
import type { Clock } from '../clock.js';
import type { Config, ListenAddress } from '../config/config.js';
import { isConsoleError, readinessCheckOf } from '../errors.js';
import { describeTarget, type InventoryService } from '../inventory/inventory-service.js';
import type { ResolvedConsoleTarget, Server } from '../inventory/types.js';
import { tokenRef, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ChangeFollower } from '../sessions/change-follower.js';
import type { ChangeEvent, SessionRecord, SessionStore } from '../sessions/types.js';
import { presentedToken, type ConsoleTokenService, type TokenState } from '../tokens/console-token-service.js';
import type { ConsoleTokenRecord, RevocationReason, ServerAtConsume } from '../tokens/types.js';
import { FailureStreak } from '../util/failure-streak.js';
import { uuid } from '../util/ids.js';
import { RateLimiter } from '../util/rate-limiter.js';
import { answerPlainHttp, listenerTlsFiles, plainHttpTextAnswer, reloadTls, tlsContextOptions } from '../util/tls.js';
import { CloseCode, type CloseCodeValue } from './close-codes.js';
import { ConsoleSession, type SessionOptions, type SessionSummary } from './console-session.js';
import { SessionRecords } from './session-records.js';
import { SerialSession } from './serial-session.js';
import { SessionRegistry, type LiveSession, type Slot } from './session-registry.js';
import type { SerialHub } from '../serial/serial-hub.js';
import type { ConsoleTokenKind } from '../tokens/types.js';
import { CONSOLE_PAGE_PATHS } from '../web/static-handler.js';
import type { RecordingService, SessionTap } from '../recording/recording-service.js';
import { KeyedMutex } from '../util/keyed-mutex.js';

/** Serves static files; returns true when it answered the request. */
export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ProxyDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly tokens: ConsoleTokenService;
  readonly inventory: InventoryService;
  /** Reaches and authenticates to console targets (the driver of each target's kind). */
  readonly backends: BackendOpener;
  readonly auditor: Auditor;
  readonly sessions: SessionStore;
  /** The node's one reader of the change feed: its changes end sessions here (a gap re-checks them all). */
  readonly follower: Pick<ChangeFollower, 'onChange' | 'onGap'>;
  /** Readiness (/readyz): the store can be written now, the master key is the store's, the listeners accept (app.ts). */
  readonly ready: () => Promise<void>;
  readonly staticHandler?: StaticHandler;
  /** The serial ports this node holds (serial consoles); without it, serial console links are refused. */
  readonly serial?: SerialHub;
  /** Session recording by policy (absent: nothing is recorded). */
  readonly recordings?: RecordingService;
  /**
   * Whether the credential and user a console was issued through still stand (key active, user
   * enabled): asked for every live session after a gap in the change feed (app.ts).
   */
  readonly credentialStands?: (issuedBy: string | null, userId: string | null) => Promise<boolean>;
}

/** A change as the proxy applies it (from the feed, or in-process for immediate effect). */
type AppliedChange = Pick<ChangeEvent, 'kind' | 'serverId' | 'sessionId' | 'at' | 'credential'> & Partial<Pick<ChangeEvent, 'actor' | 'reason'>>;

/** Why a connection was refused before the upgrade: HTTP status, metric/audit key, text. */
interface Refusal {
  status: number;
  key: string;
  text: string;
}

const R = {
  notFound: { status: 404, key: 'not-found', text: 'Not found.' },
  badMethod: { status: 405, key: 'bad-method', text: 'A WebSocket upgrade is a GET.' },
  badUpgrade: { status: 400, key: 'bad-upgrade', text: 'Not a valid WebSocket upgrade (GET, Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version 13).' },
  badSubprotocol: { status: 400, key: 'bad-subprotocol', text: 'No offered WebSocket subprotocol is supported: offer "binary" (as noVNC does), or none.' },
  shuttingDown: { status: 503, key: 'shutting-down', text: 'The console proxy is shutting down; request a new console URL.' },
  badOrigin: { status: 403, key: 'bad-origin', text: 'This page\'s origin may not open consoles here.' },
  throttled: { status: 429, key: 'throttled', text: 'Too many failed attempts from your address; wait a minute.' },
  capTotal: { status: 429, key: 'cap-total', text: 'The console proxy is at its session limit; try again later.' },
  capProject: { status: 429, key: 'cap-project', text: 'Your project has reached its limit of open consoles.' },
  capServer: { status: 429, key: 'cap-server', text: 'This server has reached its limit of open consoles.' },
  tokenUnknown: { status: 401, key: 'token-unknown', text: 'The console link is not valid; request a new console URL.' },
  tokenUsed: { status: 401, key: 'token-used', text: 'The console link was already used; request a new console URL.' },
  tokenExpired: { status: 401, key: 'token-expired', text: 'The console link has expired; request a new console URL.' },
  tokenWrongKind: { status: 401, key: 'token-wrong-kind', text: 'This console link is for another kind of console (VNC or serial); open it with its own page.' },
  noSerialPort: { status: 409, key: 'no-serial-port', text: 'This server has no serial console.' },
  serverNotActive: { status: 409, key: 'server-not-active', text: 'The server is not running (or its console changed); start it and request a new console URL.' },
  unavailable: { status: 503, key: 'store-unavailable', text: 'The console service is temporarily unavailable; try again shortly.' },
} satisfies Record<string, Refusal>;

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 429: 'Too Many Requests', 503: 'Service Unavailable' };

const REVOKE_TEXT: Record<ChangeEvent['kind'], string> = {
  'server-stopped': 'The server was stopped.',
  'server-deleted': 'The server was deleted.',
  'console-changed': 'The server\'s console was moved.',
  'session-kill': 'An operator ended this console session.',
  'credential-revoked': 'The access key or user that requested this console was deactivated, deleted or disabled.',
  // Ends nothing (its serverId is null): the caches' invalidation only.
  'record-changed': 'The server changed.',
};

/**
 * A revoked token is answered with what happened (409 `server-not-active`), not as a guess: the
 * page shows the reason. Reasons a later version may add get the generic text.
 */
const REVOKED: Record<RevocationReason, Refusal> = {
  'server-stopped': { status: 409, key: 'server-not-active', text: 'The server was stopped; start it and request a new console URL.' },
  'server-deleted': { status: 409, key: 'server-not-active', text: 'The server was deleted.' },
  'console-changed': { status: 409, key: 'server-not-active', text: 'The server\'s console was moved; request a new console URL.' },
  'credential-revoked': { status: 401, key: 'credential-revoked', text: 'The access key or user that requested this console link was deactivated, deleted or disabled.' },
};
const REVOKED_OTHER: Refusal = { status: 409, key: 'server-not-active', text: 'The console link was revoked; request a new console URL.' };

function revokedRefusal(reason: string | null): Refusal {
  return reason !== null && Object.hasOwn(REVOKED, reason) ? REVOKED[reason as RevocationReason] : REVOKED_OTHER;
}

/** The refusal of a token that is not valid (before or at its consumption). */
function tokenRefusal(state: Exclude<TokenState, 'valid'>, revokedReason: string | null): Refusal {
  switch (state) {
    case 'used': return R.tokenUsed;
    case 'expired': return R.tokenExpired;
    case 'revoked': return revokedRefusal(revokedReason);
    default: return R.tokenUnknown;
  }
}

export class ConsoleProxy {
  private readonly server: HttpServer;
  private readonly wss: WebSocketServer;
  readonly registry: SessionRegistry;
  private readonly failedTokens: RateLimiter;
  private allowedOrigins: ReadonlySet<string> = new Set();
  private draining = false;
  private timers: NodeJS.Timeout[] = [];
  /** The store's copy of the live sessions of this process (`sessions list|kill`). */
  readonly records: SessionRecords;
  /** Tokens consumed by attempts that failed for a reason of ours, to give back (by hash). */
  private readonly toGiveBack = new Map<string, ConsoleTokenRecord>();
  private givingBack = false;
  private readonly giveBackStreak: FailureStreak;
  private lastPingAt = 0;
  private readonly hsts: boolean;
  private readonly consoleOptions: SessionOptions;
  /**
   * Changes applied so far (a sequence number), and those a setup in flight may still have to
   * replay: only those after the oldest in-flight setup's start (`seq0`), oldest first, so that
   * a continuous stream of overlapping setups does not keep every change for ever.
   */
  private changeSeq = 0;
  private recentChanges: Array<{ seq: number; ch: AppliedChange }> = [];
  /**
   * Upgrades between their token check and their session's registration, counted by the
   * `changeSeq` they started at. Setups start at a `changeSeq` no lower than any in flight, so the
   * map's insertion order is ascending and its first key is the oldest in-flight setup's.
   */
  private readonly setupsInFlight = new Map<number, number>();
  /**
   * One setup per link at a time on this node, from its token check to its consumption: the losers
   * of a double click (or of 50 tabs) read the link once the first has consumed it and are told
   * "already used", without holding one of the server's console slots meanwhile.
   */
  private readonly links = new KeyedMutex();

  constructor(private readonly deps: ProxyDeps) {
    const c = deps.config;
    this.registry = new SessionRegistry({ total: c.proxyMaxSessions, perProject: c.proxyMaxSessionsPerProject, perServer: c.proxyMaxSessionsPerServer });
    // NOTE: per node, in memory: a flood of bad tokens is answered without touching the store.
    // Behind a round-robin balancer an address gets this budget on each proxy node.
    this.failedTokens = new RateLimiter(c.proxyFailedTokenLimitPerMinute, 60_000, deps.clock);
    this.giveBackStreak = new FailureStreak(deps.log, 'giving back a console token', deps.clock);
    this.records = new SessionRecords(deps.sessions, c.nodeId, deps.clock, deps.log, () => this.liveRecords());
    this.hsts = c.proxyTlsCert !== null;
    this.consoleOptions = { handshakeTimeoutMs: c.proxyHandshakeTimeoutSeconds * 1000, maxMessageBytes: c.proxyMaxMessageBytes };
    // Changes appended by any node: revocations and session kills. After a gap in the feed (changes
    // purged while this node could not read them) every live session is checked against the
    // inventory and its credential instead.
    deps.follower.onChange((ch) => void this.applyChange(ch));
    deps.follower.onGap(async () => {
      if (this.registry.size > 0) await this.recheckAll();
    });
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.onRequest(req, res);
    // Node checks these timeouts every connectionsCheckingInterval (30 s by default): slowloris.
    const timeouts = { connectionsCheckingInterval: 1000, headersTimeout: c.httpHeadersTimeoutSeconds * 1000, requestTimeout: c.httpRequestTimeoutSeconds * 1000 };
    const tls = listenerTlsFiles(c, 'proxy');
    this.server = tls ? createHttpsServer({ ...timeouts, ...tlsContextOptions(tls) }, handler) : createHttpServer(timeouts, handler);
    if (this.server instanceof TlsServer) answerPlainHttp(this.server, plainHttpTextAnswer, timeouts.headersTimeout);
    this.server.keepAliveTimeout = 5_000;
    this.server.maxConnections = c.proxyMaxSessions + 1000;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Malformed or too slow (headersTimeout, slowloris): answer if possible, then let the socket go.
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
      else socket.destroy();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: c.proxyMaxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // noVNC asks for "binary"; clients asking for nothing get no subprotocol (others are refused before).
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  /** Listens; returns the actual address. */
  async listen(addr: ListenAddress, allowedOrigins: (actual: ListenAddress) => readonly string[]): Promise<ListenAddress> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(addr.port, addr.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address();
    if (!a || typeof a === 'string') throw new Error('proxy is not listening on TCP');
    const actual = { host: a.address, port: a.port };
    // Computed once: requests never change the allow-list (Nova bug 2158919).
    this.allowedOrigins = new Set(allowedOrigins(actual));
    this.timers.push(setInterval(() => this.sweep(), 1000));
    // The first heartbeat at once: it clears what an earlier process of this node id left behind.
    void this.records.sync();
    this.timers.push(setInterval(() => void this.records.sync(), this.deps.config.sessionHeartbeatSeconds * 1000));
    for (const t of this.timers) t.unref();
    return actual;
  }

  /**
   * Loads the configured certificate and key again for new connections (SIGHUP); open sessions
   * keep theirs. Throws, keeping the current ones, when the files cannot be used.
   */
  reloadTls(config: Config): void {
    reloadTls(this.server, config, 'proxy');
  }

  /** Why a new console would not be taken now (the listener is closed, or the node is at `proxyMaxSessions`), or null; a drain is told apart by /readyz itself. */
  notAccepting(): string | null {
    if (!this.server.listening) return 'the console proxy listener is closed';
    if (this.registry.full()) return `the console proxy is at its session cap (proxyMaxSessions ${this.deps.config.proxyMaxSessions})`;
    return null;
  }

  get origins(): ReadonlySet<string> {
    return this.allowedOrigins;
  }

  // ---- HTTP

  private headers(res: ServerResponse): void {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (this.hsts) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    this.headers(res);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/api/console/info') return await this.consoleInfo(req, res);
      if (path === '/healthz' && req.method === 'GET') return this.json(res, 200, { status: 'ok' });
      if (path === '/readyz' && req.method === 'GET') {
        if (this.draining) return this.json(res, 503, { status: 'draining' });
        return await this.deps.ready().then(() => this.json(res, 200, { status: 'ready' }), (e: unknown) => this.json(res, 503, { status: 'unavailable', check: readinessCheckOf(e) }));
      }
      if (path === '/metrics' && req.method === 'GET') {
        const text = await this.deps.metrics.registry.metrics();
        this.headers(res);
        res.writeHead(200, { 'Content-Type': this.deps.metrics.registry.contentType, 'Cache-Control': 'no-store' });
        return void res.end(text);
      }
      this.headers(res);
      if (this.deps.staticHandler?.(req, res)) {
        // The page's own loads (not its assets), for following a user's attempt: never the query (it holds the token).
        if (CONSOLE_PAGE_PATHS.includes(path)) this.deps.log.info({ path, method: req.method, status: res.statusCode, remote: this.clientAddress(req) }, 'console page served');
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end('Not found.\n');
    } catch (e) {
      this.deps.log.error({ err: e }, 'proxy request failed');
      if (!res.headersSent) this.json(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  }

  /** POST {"token"} -> the token's state and server name, without consuming it (the page's pre-check). */
  private async consoleInfo(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return this.json(res, 405, { error: 'POST only' });
    const addr = this.clientAddress(req);
    if (this.failedTokens.blocked(addr)) return this.json(res, 429, { state: 'throttled' });
    const body = await readSmallBody(req, 1024);
    let token = '';
    try {
      const parsed = body === null ? null : (JSON.parse(body) as unknown);
      if (parsed && typeof parsed === 'object' && typeof (parsed as { token?: unknown }).token === 'string') token = (parsed as { token: string }).token;
    } catch {
      /* answered below */
    }
    if (!token) return this.json(res, 400, { error: 'expected {"token": "..."}' });
    let peek;
    let server: Server | null = null;
    try {
      peek = await this.deps.tokens.peek(token);
      if (peek.state === 'valid') server = await this.deps.inventory.findServer(peek.record!.serverId);
    } catch (e) {
      this.deps.log.warn({ err: e }, 'token pre-check failed');
      return this.json(res, 503, { state: 'unavailable' });
    }
    // The token's reference (a hash prefix) correlates with the WebSocket attempt; the token is never logged.
    const checked = (state: string, reason?: string | null): void => this.deps.log.info({
      state, reason: reason ?? undefined, remote: addr, ...(peek.record ? { tokenRef: tokenRef(token), server: peek.record.serverId } : {}),
    }, 'console pre-check');
    // A revoked link says what happened; it is not a guess and does not count as one.
    if (peek.state === 'revoked') {
      checked('server-not-active', peek.record!.revokedReason);
      return this.json(res, 200, { state: 'server-not-active', reason: peek.record!.revokedReason });
    }
    if (peek.state !== 'valid') {
      if (peek.state === 'unknown') this.failedTokens.hit(addr);
      checked(peek.state);
      return this.json(res, 200, { state: peek.state });
    }
    const why = unusableReason(server, peek.record!);
    if (why) {
      checked('server-not-active', why);
      return this.json(res, 200, { state: 'server-not-active', reason: why });
    }
    checked('valid');
    return this.json(res, 200, { state: 'valid', kind: peek.record!.kind ?? 'vnc', server: { name: server!.name }, expiresAt: new Date(peek.record!.expiresAt).toISOString() });
  }

  private clientAddress(req: IncomingMessage): string {
    if (this.deps.config.trustProxy) {
      const xff = req.headers['x-forwarded-for'];
      const last = (Array.isArray(xff) ? xff.join(',') : xff)?.split(',').map((s) => s.trim()).filter(Boolean).pop();
      if (last) return last;
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  // ---- WebSocket upgrade: every check before accepting

  private refuse(socket: Duplex, r: Refusal, ctx: { addr: string; tokenRef?: string; serverId?: string; projectId?: string; revoked?: string | null; origin?: string; audit?: boolean; userId?: string | null; credential?: string | null }): void {
    const body = r.text + '\n';
    if (socket.writable) {
      socket.end(`HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
    }
    setTimeout(() => socket.destroy(), 1000).unref();
    this.deps.metrics.sessions.inc({ outcome: 'rejected', reason: r.key });
    // Warn: a refusal is someone who wanted a console and did not get one (a drain's are expected).
    const revoked = ctx.revoked ?? undefined;
    const fields = { reason: r.key, status: r.status, remote: ctx.addr, tokenRef: ctx.tokenRef, server: ctx.serverId, revoked, origin: ctx.origin };
    if (r === R.shuttingDown) this.deps.log.info(fields, 'console refused');
    else this.deps.log.warn(fields, 'console refused');
    if (ctx.audit !== false) {
      this.deps.auditor.record('rejected', {
        projectId: ctx.projectId ?? null, serverId: ctx.serverId ?? null, tokenRef: ctx.tokenRef ?? null,
        clientAddress: ctx.addr, outcome: 'refused', actorUserId: ctx.userId ?? null, actorCredential: ctx.credential ?? null,
        detail: { reason: r.key, status: r.status, remote: ctx.addr, ...(revoked !== undefined ? { revoked } : {}) },
      }).catch(this.auditFailed);
    }
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A shared function, not a closure: it stays on the socket for the session's life and would
    // keep this attempt's state (the target and its password among it) with it.
    socket.on('error', destroySelf);
    const addr = this.clientAddress(req);
    let slot: { release(): void } | null = null;
    /** This setup's `seq0` while it is in flight. */
    let inFlight: number | null = null;
    /** Gives the link back to the other setups of it, once this one has consumed it (or failed before). */
    let letGo: (() => void) | null = null;
    try {
      const requested = upgradeTarget(req.url ?? '/');
      if (requested === null) return this.refuse(socket, R.notFound, { addr, audit: false });
      // The VNC console (noVNC's path) or the serial console (serial.html's).
      const kind: ConsoleTokenKind | null = requested.path === '/websockify' ? 'vnc' : requested.path === SERIAL_PATH ? 'serial' : null;
      if (kind === null) return this.refuse(socket, R.notFound, { addr, audit: false });
      // What the WebSocket layer would refuse is refused here, before a token is spent.
      if (req.method !== 'GET') return this.refuse(socket, R.badMethod, { addr, audit: false });
      if (!isValidUpgrade(req)) return this.refuse(socket, R.badUpgrade, { addr, audit: false });
      // A client that offered subprotocols fails an upgrade that picks none: refused before the token is spent.
      if (!offersSubprotocol(req)) return this.refuse(socket, R.badSubprotocol, { addr, audit: false });
      if (this.draining) return this.refuse(socket, R.shuttingDown, { addr, audit: false });
      const origin = req.headers.origin;
      if (origin === undefined ? !this.deps.config.proxyAllowMissingOrigin : !this.allowedOrigins.has(origin)) {
        return this.refuse(socket, R.badOrigin, { addr, origin: origin ?? '(none)' });
      }
      // NOTE: a flood of bad tokens from one address is answered without touching the store.
      if (this.failedTokens.blocked(addr)) return this.refuse(socket, R.throttled, { addr, audit: false });
      if (this.registry.full()) return this.refuse(socket, R.capTotal, { addr });
      const token = requested.token;
      // Hashed once: the store's key and the log reference (peek, consume and the logs share it).
      const presented = token ? presentedToken(token) : null;
      const ref = presented?.ref;
      // Changes applied from here on are replayed on the session once registered (replayChanges).
      const seq0 = this.changeSeq;
      this.setupsInFlight.set(seq0, (this.setupsInFlight.get(seq0) ?? 0) + 1);
      inFlight = seq0;
      if (ref) letGo = await this.links.acquire(ref);
      const peek = await this.deps.tokens.peek(presented ?? token);
      if (peek.state !== 'valid') {
        // Only unknown tokens count: guessing is what the throttle stops; a reload of a used,
        // expired or revoked link is not.
        if (peek.state === 'unknown') this.failedTokens.hit(addr);
        return this.refuse(socket, tokenRefusal(peek.state, peek.record?.revokedReason ?? null),
          { addr, ...(ref && peek.state !== 'unknown' ? { tokenRef: ref } : {}), ...(peek.record ? { serverId: peek.record.serverId, projectId: peek.record.projectId, revoked: peek.record.revokedReason, userId: peek.record.issuedByUser ?? null, credential: peek.record.issuedBy ?? null } : {}) });
      }
      const rec = peek.record!;
      const ctx = { addr, tokenRef: ref!, serverId: rec.serverId, projectId: rec.projectId, userId: rec.issuedByUser ?? null, credential: rec.issuedBy ?? null };
      // Checked before the consume: a link opened with the wrong page stays usable with its own.
      if ((rec.kind ?? 'vnc') !== kind) return this.refuse(socket, R.tokenWrongKind, ctx);
      const reserved = this.registry.reserve(rec.projectId, rec.serverId);
      if (reserved === 'total') return this.refuse(socket, R.capTotal, ctx);
      if (reserved === 'project') return this.refuse(socket, R.capProject, ctx);
      if (reserved === 'server') return this.refuse(socket, R.capServer, ctx);
      slot = reserved;
      // NOTE: what can fail for a reason of ours (the store, the master key) is read before the
      // token is consumed, so such a failure leaves the link usable on a retry. The server and
      // the recording policy come from the node's caches when the change feed is followed
      // (sessions/change-follower.ts); the re-check after the consumption is the store's.
      let before = await this.deps.inventory.findServerForConsole(rec.serverId);
      let target: ResolvedConsoleTarget | null;
      try {
        target = before ? this.deps.inventory.resolveTarget(before) : null;
      } catch {
        // A password that does not open (sealed with another key, or a row repaired behind the
        // feed's back): not kept from the cache; the store's row decides (its failure refuses).
        this.deps.inventory.invalidate({ kind: 'record-changed', serverId: null, credential: `server:${rec.serverId}` });
        before = await this.deps.inventory.findServer(rec.serverId);
        target = before ? this.deps.inventory.resolveTarget(before) : null;
      }
      const sessionId = uuid();
      // Serial consoles are not recorded (their output is kept: console_output).
      const tap = kind === 'serial' ? null : (await this.deps.recordings?.tapFor({ id: sessionId, projectId: rec.projectId, serverId: rec.serverId })) ?? null;
      const consumed = await this.deps.tokens.consume(presented ?? token, this.deps.config.nodeId);
      letGo?.();
      letGo = null;
      if (!consumed.ok) {
        if (consumed.reason === 'unknown') this.failedTokens.hit(addr);
        return this.refuse(socket, tokenRefusal(consumed.reason, consumed.reason === 'revoked' ? consumed.revokedReason : null),
          { ...ctx, ...(consumed.reason === 'revoked' ? { revoked: consumed.revokedReason } : {}) });
      }
      let server: Server | null = before;
      // Re-check the target at connect time (CVE-2013-0335): still ACTIVE, same console. The
      // store read the server in the consumption's own transaction or statement, after the
      // consumption (a stop committed before it is seen there, one after it closes the session
      // through the change feed); only a server that differs from the cached one is read again.
      if (consumed.server === undefined || !sameServer(before, consumed.server)) {
        try {
          server = await this.deps.inventory.findServer(rec.serverId);
          if (server && (!target || server.consoleRevision !== before?.consoleRevision)) target = this.deps.inventory.resolveTarget(server);
        } catch (e) {
          // The store failed after the consume: our failure, not the user's; the link stays usable.
          this.giveBack(consumed.token);
          throw e;
        }
      }
      if (!usable(server, consumed.token)) return this.refuse(socket, R.serverNotActive, ctx);
      if (kind === 'serial' && (!server!.console.serial || !this.deps.serial)) return this.refuse(socket, R.noSerialPort, ctx);
      if (this.draining || !socket.writable) {
        this.giveBack(consumed.token);
        return this.refuse(socket, R.shuttingDown, { ...ctx, audit: false });
      }
      const held = slot;
      slot = null;
      const issuedAt = consumed.token.issuedAt;
      // The 101 answer and our first RFB bytes (ProtocolVersion) leave in one write.
      const corked = 'cork' in socket ? (socket as Duplex & { cork(): void; uncork(): void }) : null;
      corked?.cork();
      let started = false;
      // Should the WebSocket layer still refuse (it then never calls back), the slot and the token are given back.
      const refusedByWs = (): void => {
        if (started) return;
        held.release();
        this.giveBack(consumed.token);
      };
      socket.once('close', refusedByWs);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        started = true;
        socket.off('close', refusedByWs);
        const sctx = {
          ...ctx, issuedAt, consoleRevision: consumed.token.consoleRevision, issuedBy: consumed.token.issuedBy ?? null, issuedByUser: consumed.token.issuedByUser ?? null,
          sessionId, tap,
        };
        const session = kind === 'serial' ? this.startSerialSession(ws, server!, sctx, held) : this.startSession(ws, server!, target!, sctx, held);
        this.replayChanges(session, seq0);
        if (corked) process.nextTick(uncork, corked);
      });
      if (!started) corked?.uncork();
    } catch (e) {
      const known = isConsoleError(e) && e.code === 'STORE_UNAVAILABLE';
      if (!known) this.deps.log.error({ err: e }, 'upgrade failed');
      this.refuse(socket, R.unavailable, { addr, audit: false });
    } finally {
      letGo?.();
      slot?.release();
      if (inFlight !== null) this.setupEnded(inFlight);
    }
  }

  /** A setup that started at `seq0` is over: the changes no setup in flight can replay are let go. */
  private setupEnded(seq0: number): void {
    const n = this.setupsInFlight.get(seq0)!;
    if (n > 1) return void this.setupsInFlight.set(seq0, n - 1);
    this.setupsInFlight.delete(seq0);
    const oldest = this.setupsInFlight.keys().next();
    if (oldest.done) {
      this.recentChanges = [];
      return;
    }
    // Replayed only when seq > seq0 (replayChanges): those at or before the oldest seq0 serve no one.
    const keep = this.recentChanges.findIndex((c) => c.seq > oldest.value);
    if (keep !== 0) this.recentChanges = keep < 0 ? [] : this.recentChanges.slice(keep);
  }

  /** Changes held for setups in flight to replay (bounded by the oldest setup in flight). */
  get heldChanges(): number {
    return this.recentChanges.length;
  }

  /**
   * Applies to a session just registered the changes applied while it was being set up: the
   * store's re-check saw the server as it was when the token was consumed, and a change read from
   * the feed before the session was registered found nothing to close.
   */
  private replayChanges(session: LiveSession, since: number): void {
    for (const { seq, ch } of this.recentChanges) if (seq > since) this.closeIfEnded(session, ch);
  }

  private startSession(
    ws: import('ws').WebSocket, server: Server, target: ResolvedConsoleTarget,
    ctx: { addr: string; tokenRef: string; issuedAt: number; consoleRevision: number; issuedBy: string | null; issuedByUser: string | null; sessionId: string; tap: SessionTap | null },
    slot: { release(): void },
  ): LiveSession {
    const session = new ConsoleSession(
      ws,
      { id: ctx.sessionId, serverId: server.id, projectId: server.projectId, serverName: server.name, backend: describeTarget(server.console), tokenRef: ctx.tokenRef, tokenIssuedAt: ctx.issuedAt, clientAddress: ctx.addr,
        issuedBy: ctx.issuedBy, issuedByUser: ctx.issuedByUser },
      (signal) => this.deps.backends.open(target, { kind: 'vnc', signal }),
      // One options object for every session that is not recorded.
      ctx.tap ? { ...this.consoleOptions, tap: ctx.tap } : this.consoleOptions,
      this.hooks,
      this.deps.clock,
      this.deps.log,
    );
    this.run(session, ctx.consoleRevision, slot, 'session', CloseCode.BackendProtocol);
    return session;
  }

  private startSerialSession(ws: import('ws').WebSocket, server: Server, ctx: { addr: string; tokenRef: string; issuedAt: number; consoleRevision: number }, slot: { release(): void }): LiveSession {
    const c = this.deps.config;
    const hub = this.deps.serial!;
    const id = uuid();
    const session = new SerialSession(
      ws,
      { id, serverId: server.id, projectId: server.projectId, serverName: server.name, backend: `serial=${server.console.serial ?? ''}`, tokenRef: ctx.tokenRef, tokenIssuedAt: ctx.issuedAt, clientAddress: ctx.addr },
      (viewer, signal) => hub.attach(server, viewer, signal),
      { setupTimeoutMs: c.proxyHandshakeTimeoutSeconds * 1000, maxMessageBytes: c.proxyMaxMessageBytes, label: `session ${id.slice(0, 8)} from ${ctx.addr}` },
      this.hooks,
      this.deps.clock,
      this.deps.log,
    );
    this.run(session, ctx.consoleRevision, slot, 'serial session', CloseCode.BackendUnreachable);
    return session;
  }

  /** One handler for every audit write that fails (no closure per event). */
  private readonly auditFailed = (e: unknown): void => this.deps.log.warn({ err: e }, 'audit write failed');

  /** What every kind of session reports: established, and closed (its slot given back then, by the registry). One object for all sessions. */
  private readonly hooks = {
    onEstablished: (s: LiveSession, ms: number): void => this.onEstablished(s, ms),
    onClosed: (s: LiveSession, summary: SessionSummary): void => this.onClosed(s, summary),
  };

  /** Registers a session of any kind, holding `slot`, and starts it; a start that throws ends it with `failCode`. */
  private run(session: LiveSession & { start(): Promise<void> }, consoleRevision: number, slot: Slot, what: string, failCode: CloseCodeValue): void {
    this.registry.add(session, consoleRevision, slot);
    session.start().catch((e: unknown) => {
      this.deps.log.error({ err: e }, `${what} failed`);
      session.close(failCode, 'Internal error.');
    });
  }

  private onEstablished(s: LiveSession, handshakeMs: number): void {
    const m = this.deps.metrics;
    m.sessionsActive.inc();
    m.sessions.inc({ outcome: 'connected', reason: 'ok' });
    m.handshakeSeconds.observe(handshakeMs / 1000);
    const i = s.info;
    this.records.added({
      id: i.id, serverId: i.serverId, projectId: i.projectId, tokenRef: i.tokenRef, clientAddress: i.clientAddress, startedAt: s.startedAt,
      userId: i.issuedByUser ?? null, credential: i.issuedBy ?? null,
    });
    this.deps.auditor.record('connected', {
      projectId: i.projectId, serverId: i.serverId, tokenRef: i.tokenRef, sessionId: i.id,
      clientAddress: i.clientAddress, actorUserId: i.issuedByUser ?? null, actorCredential: i.issuedBy ?? null, outcome: 'ok',
      detail: { remote: i.clientAddress, handshakeMs, ...(s.recordingId ? { recording: s.recordingId } : {}) },
    }).catch(this.auditFailed);
  }

  private onClosed(s: LiveSession, sum: SessionSummary): void {
    this.registry.remove(s);
    const m = this.deps.metrics;
    const i = s.info;
    m.bytes.inc({ direction: 'to_client' }, sum.bytesToClient);
    m.bytes.inc({ direction: 'to_backend' }, sum.bytesToBackend);
    if (sum.established) {
      m.sessionsActive.dec();
      m.sessions.inc({ outcome: 'closed', reason: sum.reasonKey });
      this.records.removed(i.id);
    } else {
      m.sessions.inc({ outcome: 'rejected', reason: sum.reasonKey });
    }
    this.deps.auditor.record(sum.established ? 'closed' : 'rejected', {
      projectId: i.projectId, serverId: i.serverId, tokenRef: i.tokenRef, sessionId: i.id,
      clientAddress: i.clientAddress, actorUserId: i.issuedByUser ?? null, actorCredential: i.issuedBy ?? null,
      outcome: sum.established ? 'ok' : 'refused',
      detail: {
        reason: sum.reasonKey, code: sum.code, bytesToClient: sum.bytesToClient, bytesToBackend: sum.bytesToBackend,
        durationMs: sum.durationMs, remote: i.clientAddress, closedBy: sum.closedBy, message: sum.reason, ...(sum.established && s.recordingId ? { recording: s.recordingId } : {}),
      },
    }).catch(this.auditFailed);
  }

  // ---- session life

  /** Idle timeout, maximum duration and ping/pong, for every session, once a second. */
  private sweep(): void {
    if (this.toGiveBack.size > 0) void this.givePendingBack();
    const c = this.deps.config;
    const now = this.deps.clock.now();
    const idleMs = c.proxyIdleTimeoutSeconds * 1000;
    const maxMs = c.proxyMaxSessionSeconds * 1000;
    const ping = now - this.lastPingAt >= c.proxyPingIntervalSeconds * 1000;
    if (ping) this.lastPingAt = now;
    for (const s of [...this.registry.values()]) {
      if (!s.established) continue;
      if (maxMs > 0 && now - s.startedAt >= maxMs) s.close(CloseCode.MaxDuration, 'The console session reached its maximum duration.');
      else if (idleMs > 0 && now - s.lastInputAt >= idleMs) s.close(CloseCode.IdleTimeout, 'The console session was idle for too long.');
      else if (ping) {
        if (!s.alive) {
          s.ws.terminate();
          continue;
        }
        s.alive = false;
        s.ws.ping();
      }
    }
  }

  /** Closes the sessions whose server is gone, stopped or moved (after a gap in the change feed). */
  private async recheckAll(): Promise<number> {
    let closed = 0;
    for (const serverId of this.registry.serverIds()) {
      const server = await this.deps.inventory.findServer(serverId);
      for (const { session, consoleRevision } of this.registry.sessionsOf(serverId)) {
        const why = unusableReason(server, { projectId: session.info.projectId, consoleRevision });
        if (why) {
          session.close(CloseCode.Revoked, REVOKE_TEXT[why]);
          closed++;
        } else if (this.deps.credentialStands && !(await this.deps.credentialStands(session.info.issuedBy ?? null, session.info.issuedByUser ?? null))) {
          // A revocation lost in the gap: the key deactivated or deleted, the user disabled or deleted.
          session.close(CloseCode.CredentialRevoked, REVOKE_TEXT['credential-revoked']);
          closed++;
        }
      }
    }
    this.deps.log.warn({ closed }, 'changes were purged before this node read them; live sessions re-checked against the inventory and their credentials');
    return closed;
  }

  /**
   * Closes the sessions a change ends: those of its server whose tokens were issued before the
   * change (`at`), or the one session killed, or (a kill without a session) every session of its
   * server. Also called in-process for immediate effect.
   */
  applyChange(ch: AppliedChange): number {
    this.changeSeq++;
    if (this.setupsInFlight.size > 0 && ch.kind !== 'record-changed') this.recentChanges.push({ seq: this.changeSeq, ch });
    const closedBy = ch.actor ?? null;
    if (ch.kind === 'session-kill') {
      const text = closeText(REVOKE_TEXT['session-kill'], ch.reason ?? null);
      if (ch.sessionId) {
        const s = this.registry.get(ch.sessionId);
        if (s) s.closedBy = closedBy ?? 'operator';
        s?.close(CloseCode.Killed, text);
        return s ? 1 : 0;
      }
      return ch.serverId ? this.registry.closeServer(ch.serverId, CloseCode.Killed, text, ch.at, closedBy ?? 'operator') : 0;
    }
    if (ch.kind === 'credential-revoked') {
      return ch.credential ? this.registry.closeIssuedBy(ch.credential, CloseCode.CredentialRevoked, REVOKE_TEXT['credential-revoked'], ch.at) : 0;
    }
    const n = ch.serverId ? this.registry.closeServer(ch.serverId, CloseCode.Revoked, REVOKE_TEXT[ch.kind], ch.at, closedBy ?? 'inventory') : 0;
    // The server's serial port is let go too (it may be another VM's now, or gone), unless it was
    // taken after the change (a late copy of a stop, read after the server was started again).
    if (ch.serverId) this.deps.serial?.release(ch.serverId, REVOKE_TEXT[ch.kind], ch.at);
    return n;
  }

  /** Closes `s` when `ch` ends it (as applyChange would have, had `s` been registered then). */
  private closeIfEnded(s: LiveSession, ch: AppliedChange): void {
    const i = s.info;
    if (ch.kind === 'record-changed' || ch.sessionId || i.tokenIssuedAt > ch.at) return;
    if (ch.kind === 'credential-revoked') {
      const c = ch.credential ?? '';
      if (c.startsWith('user:') ? i.issuedByUser === c.slice(5) : i.issuedBy === c) s.close(CloseCode.CredentialRevoked, REVOKE_TEXT['credential-revoked']);
      return;
    }
    if (ch.serverId !== i.serverId) return;
    s.closedBy = ch.actor ?? (ch.kind === 'session-kill' ? 'operator' : 'inventory');
    if (ch.kind === 'session-kill') s.close(CloseCode.Killed, closeText(REVOKE_TEXT['session-kill'], ch.reason ?? null));
    else s.close(CloseCode.Revoked, REVOKE_TEXT[ch.kind]);
  }

  /** What the heartbeat writes: the established sessions of this process. */
  private liveRecords(): SessionRecord[] {
    const { nodeId, instanceId } = this.records.owner;
    const now = this.deps.clock.now();
    const out: SessionRecord[] = [];
    for (const s of this.registry.values()) {
      if (!s.established) continue;
      const i = s.info;
      out.push({
        id: i.id, nodeId, instanceId, serverId: i.serverId, projectId: i.projectId, tokenRef: i.tokenRef, clientAddress: i.clientAddress, startedAt: s.startedAt, heartbeatAt: now,
        userId: i.issuedByUser ?? null, credential: i.issuedBy ?? null, bytesToClient: s.bytesToClient, bytesToBackend: s.bytesToBackend,
      });
    }
    return out;
  }

  /**
   * Gives a consumed token back: the attempt failed for a reason of ours (the store, shutting
   * down), so the link must work on a retry. When the store is down too, it is tried again every
   * second until it works or the token expires.
   */
  private giveBack(t: ConsoleTokenRecord): void {
    this.toGiveBack.set(t.hash, t);
    void this.givePendingBack();
  }

  private async givePendingBack(): Promise<void> {
    if (this.givingBack) return;
    this.givingBack = true;
    try {
      for (const [hash, t] of [...this.toGiveBack]) {
        if (t.expiresAt <= this.deps.clock.now()) {
          this.toGiveBack.delete(hash);
          continue;
        }
        try {
          await this.deps.tokens.release(t, this.deps.config.nodeId);
          this.toGiveBack.delete(hash);
          this.giveBackStreak.succeeded();
        } catch (e) {
          this.giveBackStreak.failed(e);
          break;
        }
      }
    } finally {
      this.givingBack = false;
    }
  }

  get sessionCount(): number {
    return this.registry.size;
  }

  /**
   * Stops accepting; live sessions may go on for `drainMs`, then the rest are closed with a
   * reason. Resolves when every session has ended. The listener stays open during the drain:
   * `/readyz` answers 503 (load balancers take the node out) and new consoles are refused with 503.
   */
  async stop(drainMs: number): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const deadline = Date.now() + drainMs;
    while (this.registry.size > 0 && Date.now() < deadline) await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
    this.registry.closeAll(CloseCode.ShuttingDown, 'The console proxy is shutting down.');
    const hard = Date.now() + 3000;
    while (this.registry.size > 0 && Date.now() < hard) await sleep(20);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // The rows of the sessions just closed are deleted, and tokens given back, before the store
    // closes (a store that does not answer holds the exit up 2 s at most).
    await Promise.race([Promise.all([this.records.flush(2000), this.givePendingBack()]), sleep(2000, true)]);
    this.server.closeAllConnections();
    await closed;
  }
}

/**
 * The text a closed console shows: `base`, then the operator's reason, within the 123 bytes a
 * WebSocket close frame carries (cut at a character boundary).
 */
export function closeText(base: string, reason: string | null): string {
  const full = reason ? `${base} ${reason}` : base;
  const bytes = Buffer.from(full);
  if (bytes.length <= 120) return full;
  let cut = 117;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return `${bytes.subarray(0, cut).toString()}...`;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The serial console page's WebSocket path. */
export const SERIAL_PATH = '/serial-websocket';
/** The WebSocket subprotocol noVNC offers (binary frames); the only one we speak. */
const SUBPROTOCOL = 'binary';

/** No Sec-WebSocket-Protocol header, or one that offers ours (RFC 6455 4.2.2: else the client fails the connection). */
function offersSubprotocol(req: IncomingMessage): boolean {
  const header = req.headers['sec-websocket-protocol'];
  return header === undefined || header.split(',').some((p) => p.trim() === SUBPROTOCOL);
}

/** Sec-WebSocket-Protocol: comma-separated tokens, none twice (as `ws` requires). */
function validProtocols(header: string): boolean {
  const seen = new Set<string>();
  for (const part of header.split(',')) {
    const p = part.replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TOKEN.test(p) || seen.has(p)) return false;
    seen.add(p);
  }
  return true;
}

/**
 * The form a console URL's WebSocket request takes (`/websockify?token=<uuid>`, noVNC's path):
 * its path and token read without a URL object. Only a request of exactly this form; any other
 * goes through URL and URLSearchParams, which give the same answer for this one.
 */
const PLAIN_VNC_UPGRADE = /^\/websockify\?token=([0-9a-f-]{36})$/;

/** The path and `token` query parameter of an upgrade's request target, or null when it does not parse. */
export function upgradeTarget(rawUrl: string): { path: string; token: string } | null {
  const plain = PLAIN_VNC_UPGRADE.exec(rawUrl);
  if (plain !== null) return { path: '/websockify', token: plain[1]! };
  let url: URL;
  try {
    url = new URL(rawUrl, 'http://proxy.invalid');
  } catch {
    return null;
  }
  return { path: url.pathname, token: url.searchParams.get('token') ?? '' };
}

function uncork(s: Duplex & { uncork(): void }): void {
  s.uncork();
}

/** The checks `ws` makes before accepting (RFC 6455 4.2.1), made before any token is consumed. */
function isValidUpgrade(req: IncomingMessage): boolean {
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  const protocol = req.headers['sec-websocket-protocol'];
  return req.method === 'GET'
    && (req.headers.upgrade ?? '').toLowerCase() === 'websocket'
    && typeof key === 'string' && /^[+/0-9A-Za-z]{22}==$/.test(key)
    && (version === '13' || version === '8')
    && (protocol === undefined || validProtocols(protocol));
}

/** Why a token's server may no longer be reached (gone, not ACTIVE, another console target), or null. */
function unusableReason(server: Server | null, token: Pick<ConsoleTokenRecord, 'projectId' | 'consoleRevision'>): RevocationReason | null {
  if (!server || server.projectId !== token.projectId) return 'server-deleted';
  if (server.status !== 'ACTIVE') return 'server-stopped';
  return server.consoleRevision === token.consoleRevision ? null : 'console-changed';
}

/** Whether `cached` is the server the store read at the consumption (same project, status and console). */
function sameServer(cached: Server | null, read: ServerAtConsume | null): boolean {
  if (cached === null || read === null) return cached === read;
  return cached.projectId === read.projectId && cached.status === read.status && cached.consoleRevision === read.consoleRevision;
}

/** Whether a token's server may still be reached: exists, ACTIVE, same console target. */
function usable(server: Server | null, token: ConsoleTokenRecord): boolean {
  return unusableReason(server, token) === null;
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

function sleep(ms: number, unref = false): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    if (unref) t.unref();
  });
}

/** Reads a request body of at most `max` bytes; null when larger. */
function readSmallBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        if (!done) resolve(null);
        done = true;
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks).toString('utf8'));
      done = true;
    });
    req.on('error', () => {
      if (!done) resolve(null);
      done = true;
    });
  });
}

/** The default allow-list: origins of the configured console URLs, or the proxy's own address. */
export function defaultAllowedOrigins(config: Config, actual: ListenAddress): string[] {
  if (config.proxyAllowedOrigins) return [...config.proxyAllowedOrigins];
  const out = new Set<string>();
  for (const u of [config.publicUrl, ...Object.values(config.publicUrlByAz)]) if (u) out.add(new URL(u).origin);
  const scheme = config.proxyTlsCert ? 'https' : 'http';
  if (!config.publicUrl) {
    const host = actual.host === '0.0.0.0' || actual.host === '::' ? '127.0.0.1' : actual.host;
    out.add(new URL(`${scheme}://${host.includes(':') ? `[${host}]` : host}:${actual.port}`).origin);
    if (host === '127.0.0.1' || host === '::1') out.add(`${scheme}://localhost:${actual.port}`);
  }
  return [...out];
}

export type { CloseCodeValue };
