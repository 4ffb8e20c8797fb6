/**
 * The HTTP API: Huawei ECS (remote_console, ShowServer, ListServersDetails) and IAM token calls.
 * HTTP only: domain logic lives in the services; errors are mapped once through error-map.ts.
 */
import { randomBytes } from 'node:crypto';
import { requestId } from '../util/ids.js';
import { createRequire } from 'node:module';
import { Server as TlsServer } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Clock } from '../clock.js';
import type { Config } from '../config/config.js';
import { ConsoleError, RateLimitedError, isConsoleError, readinessCheckOf } from '../errors.js';
import type { IamAdminService } from '../identity/iam-admin-service.js';
import type { IdentityService } from '../identity/identity-service.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import { pathOnly, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RemoteConsoleService } from '../tokens/remote-console-service.js';
import type { ConsoleOutputService } from '../serial/console-output-service.js';
import { registerSerialRoutes } from './serial-routes.js';
import { registerNovaRoutes } from './nova-routes.js';
import { registerEmptyImageService, registerIdentityVersion } from './service-catalog.js';
import type { ConsoleTokenService } from '../tokens/console-token-service.js';
import { RateLimiter } from '../util/rate-limiter.js';
import { answerPlainHttp, listenerTlsFiles, PLAIN_HTTP_MESSAGE, tlsContextOptions } from '../util/tls.js';
import { INTERNAL, ROUTE_NOT_FOUND, huaweiBody, toHuaweiError, type HuaweiError } from './error-map.js';
import { IamAuth } from './admin-auth.js';
import { bodyValidator } from './body.js';
import { registerEcsRoutes } from './ecs-routes.js';
import { registerIamLifecycleRoutes } from './iam-lifecycle-routes.js';
import { registerIamRoutes } from './iam-routes.js';
import { registerScreenshotRoutes } from './screenshot-routes.js';
import type { ScreenshotService } from '../screenshot/screenshot-service.js';
import type { RecordingService } from '../recording/recording-service.js';
import type { StaticHandler } from '../web/static-handler.js';
import { registerRecordingRoutes } from './recording-routes.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerOperatorPageRoutes } from './operator-page-routes.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Auditor } from '../audit/auditor.js';
import type { SessionService } from '../sessions/session-service.js';
import { openApiDocument, recordRoutes } from './openapi.js';
import { OPERATIONS } from './route-docs.js';
import './request-context.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

/** Observes finished requests (metrics). */
export type RequestObserver = (route: string, method: string, status: number, seconds: number) => void;

export interface ApiDeps {
  readonly config: Config;
  readonly identity: IdentityService;
  /** The identity lifecycle behind the IAM calls (keys, users, projects). */
  readonly iam: IamAdminService;
  readonly inventory: InventoryService;
  readonly remoteConsole: RemoteConsoleService;
  readonly clock: Clock;
  readonly log: Logger;
  readonly observe?: RequestObserver;
  /** Served at /metrics when given. */
  readonly metrics?: Metrics;
  /** Readiness check (the store can be written now). */
  readonly ready: () => Promise<void>;
  /** Console tokens (the Nova API's os-console-auth-tokens; absent: no Nova API). */
  readonly consoleTokens?: ConsoleTokenService;
  /** Console output of serial consoles (absent: the output calls answer 404). */
  readonly consoleOutput?: ConsoleOutputService;
  /** True once the process is stopping: /readyz answers 503 while the listener still serves. */
  readonly draining?: () => boolean;
  /** Console screenshots (our extension); the route is absent without it. */
  readonly screenshots?: ScreenshotService;
  /** Where screenshot calls are audited. */
  readonly auditor?: Auditor;
  /** Session recordings (our extension) and the playback page's files. */
  readonly recordings?: RecordingService;
  /** The operator services behind the admin API (/admin/v1), registered when given. */
  readonly operator?: { readonly sessions: SessionService; readonly audit: AuditService; readonly auditor?: Auditor };
  /** Serves /playback.html, /operator/ and their assets. */
  readonly playbackPage?: StaticHandler;
}

/**
 * A Huawei gateway error written straight to a socket (the request never reached fastify). No
 * body when the request was a HEAD: a body there would corrupt the connection for the client.
 */
function rawHuaweiError(status: number, text: string, message: string, rawPacket?: Buffer): string {
  const requestId = randomBytes(16).toString('hex');
  const body = JSON.stringify({ error_code: status === 431 || status === 408 ? 'APIGW.0201' : 'APIGW.0101', error_msg: message, request_id: requestId });
  const head = rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nX-Request-Id: ${requestId}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`;
}

/** Sends a Huawei-shaped error. */
export function sendHuaweiError(reply: FastifyReply, err: HuaweiError, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(err.status).headers(headers).type('application/json').send(huaweiBody(err, reply.request.id));
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const { config, log } = deps;
  // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default).
  const serverOptions = {
    connectionsCheckingInterval: 1000,
    headersTimeout: config.httpHeadersTimeoutSeconds * 1000,
    requestTimeout: config.httpRequestTimeoutSeconds * 1000,
  };
  const tlsFiles = listenerTlsFiles(config, 'api');
  const tls = tlsFiles ? { https: { ...serverOptions, ...tlsContextOptions(tlsFiles) } } : { http: serverOptions };
  const app = Fastify({
    ...tls,
    loggerInstance: log.child({ component: 'api' }) as FastifyBaseLogger,
    // Our own access log (onResponse) replaces fastify's: it redacts query strings.
    logController: new LogController({ disableRequestLogging: true }),
    // 32 hex digits from a pooled CSPRNG draw (randomBytes(16) would be a system call per request).
    genReqId: requestId,
    requestIdHeader: false,
    bodyLimit: config.apiBodyLimitBytes,
    // One hop: the client is the address the load balancer appended last (never a spoofable earlier entry).
    trustProxy: config.trustProxy ? (_addr: string, hop: number) => hop === 0 : false,
    requestTimeout: config.httpRequestTimeoutSeconds * 1000,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    routerOptions: { maxParamLength: 256 },
    return503OnClosing: true,
    // Errors raised by the framework before routing (bad URL, bad content type...) take our shape.
    frameworkErrors: (err, req, reply) => {
      log.debug({ err: { code: (err as { code?: string }).code, message: err.message } }, 'framework error');
      void reply.header('X-Request-Id', req.id);
      void sendHuaweiError(reply, { status: 400, shape: 'gateway', code: 'APIGW.0101', message: 'The request is malformed.' });
    },
    // Requests Node's parser refuses (unknown method, bad bytes, slow headers) get our shape too.
    clientErrorHandler: (err, socket) => {
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
      const code = (err as NodeJS.ErrnoException).code;
      const [status, text, message] = code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'The request was not received in time.']
        : code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'The request headers are too large.']
        : [400, 'Bad Request', 'The request is malformed.'];
      socket.end(rawHuaweiError(status, text, message, (err as unknown as { rawPacket?: Buffer }).rawPacket), () => socket.destroy());
      setTimeout(() => socket.destroy(), 1000).unref();
    },
  });
  // Every route registered from here on is seen: /openapi.json is generated from them.
  const routes = recordRoutes(app);
  // Body schemas compiled as their routes are registered, not on a route's first call (ajv's
  // first compilation, of its meta-schema, costs a quarter of a second); each call reuses its route's.
  app.addHook('onRoute', (route) => {
    const body = (route.config as { openapi?: { body?: object } } | undefined)?.openapi?.body;
    if (body) bodyValidator(body);
  });
  app.server.headersTimeout = config.httpHeadersTimeoutSeconds * 1000;
  // `Expect` other than 100-continue: Node would answer 417 with an empty body.
  app.server.on('checkExpectation', (req, res) => {
    const requestId = randomBytes(16).toString('hex');
    const body = JSON.stringify({ error_code: 'APIGW.0101', error_msg: 'The Expect header is not supported.', request_id: requestId });
    res.writeHead(417, { 'Content-Type': 'application/json', 'X-Request-Id': requestId, 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  app.server.maxConnections = config.apiMaxConnections;
  if (app.server instanceof TlsServer) {
    answerPlainHttp(app.server, (first) => rawHuaweiError(400, 'Bad Request', `${PLAIN_HTTP_MESSAGE}: use https://.`, first), config.httpHeadersTimeoutSeconds * 1000);
  }

  app.decorateRequest('rawBody', null);
  app.decorateRequest('principal', null);
  app.decorateRequest('auditLog', null);

  // Bodies are kept raw: the signature covers the bytes as received, and JSON is parsed by the
  // route after authentication, so that bad bodies from unauthenticated callers reveal nothing.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    done(null, body);
  });

  const perAddress = new RateLimiter(config.apiRateLimitPerAddress, 60_000, deps.clock);
  const perCredential = new RateLimiter(config.apiRateLimitPerCredential, 60_000, deps.clock);

  // Hooks in callback style: an async hook costs promises on every request (seen in profiles).
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('X-Request-Id', req.id);
    if (config.apiTlsCert) void reply.header('Strict-Transport-Security', 'max-age=31536000');
    const d = perAddress.hit(req.ip);
    if (!d.allowed) return done(new RateLimitedError(`The throttling threshold has been reached: per address ${config.apiRateLimitPerAddress}/min`, d.retryAfterSeconds));
    done();
  });

  // On shutdown, calls in flight complete, and their connections close after the answer instead of
  // idling in keep-alive until the process is killed.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    app.server.closeIdleConnections();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    if (closing) void reply.header('Connection', 'close');
    done(null, payload);
  });

  app.addHook('onResponse', (req, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    const route = req.routeOptions.url ?? 'unmatched';
    deps.observe?.(route, req.method, reply.statusCode, seconds);
    // NOTE: path only (a query string may carry secrets); the credential's id, never its secret.
    const line: Record<string, unknown> = {
      method: req.method, path: pathOnly(req.url), route, status: reply.statusCode,
      ms: Math.round(seconds * 1000 * 10) / 10, remote: req.ip, credential: req.principal?.credentialId,
    };
    // The audit event of the call (remote_console's `issued`), on this line rather than one of its
    // own; the access fields win a name both have (`credential`: the id, which names its kind too).
    const audit = req.auditLog;
    if (audit !== null) {
      req.auditLog = null;
      for (const k in audit) if (!(k in line)) line[k] = audit[k];
    }
    req.log.info(line, 'request');
    done();
  });

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const fe = err as { code?: string; statusCode?: number };
    let mapped: HuaweiError;
    const headers: Record<string, string> = {};
    if (isConsoleError(err)) {
      mapped = toHuaweiError(err);
      if (err instanceof RateLimitedError) headers['Retry-After'] = String(err.retryAfterSeconds);
      if (mapped === INTERNAL) req.log.error({ err }, 'unmapped domain error');
      else if (mapped.status >= 500) req.log.error({ err }, 'request failed');
      // Refused credentials, locks and throttling: what an operator looks for first (the message names no secret).
      else if (mapped.status === 401 || mapped.status === 403 || mapped.status === 429) {
        req.log.warn({ status: mapped.status, error: mapped.code, code: err.code, reason: err.message, path: pathOnly(req.url), remote: req.ip }, 'request refused');
      }
    } else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      mapped = toHuaweiError(new ConsoleError('BODY_TOO_LARGE', 'Request entity too large'));
    } else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      // Framework refusals (bad content length, aborted body...): a generic 400 in our shape.
      mapped = { status: fe.statusCode === 413 ? 413 : 400, shape: 'gateway', code: fe.statusCode === 413 ? 'APIGW.0201' : 'APIGW.0101', message: 'The request is malformed.' };
    } else {
      req.log.error({ err }, 'unexpected error');
      mapped = INTERNAL;
    }
    return sendHuaweiError(reply, mapped, headers);
  });

  app.setNotFoundHandler((req, reply) => sendHuaweiError(reply, ROUTE_NOT_FOUND));

  // Who is calling (IAM token or AK/SK), rate-limited per credential: shared by every route (see admin-auth.ts).
  const auth = new IamAuth(deps.identity, perCredential, config.apiRateLimitPerCredential);
  const authenticate = async (req: FastifyRequest): Promise<void> => void (await auth.authenticate(req));

  registerEcsRoutes(app, { ...deps, authenticate });
  registerIamRoutes(app, { ...deps, auth });
  if (deps.screenshots) registerScreenshotRoutes(app, { ...deps, screenshots: deps.screenshots, authenticate });
  registerIamLifecycleRoutes(app, { ...deps, auth });
  if (deps.consoleOutput) registerSerialRoutes(app, { authenticate, output: deps.consoleOutput });
  if (deps.consoleTokens) {
    registerIdentityVersion(app);
    registerEmptyImageService(app, authenticate);
    registerNovaRoutes(app, {
      identity: deps.identity, inventory: deps.inventory, remoteConsole: deps.remoteConsole, consoleTokens: deps.consoleTokens, log,
      ...(deps.consoleOutput ? { consoleOutput: deps.consoleOutput } : {}), authenticate,
    });
  }
  if (deps.recordings) registerRecordingRoutes(app, { ...deps, recordings: deps.recordings, authenticate });
  if (deps.operator) registerAdminRoutes(app, { ...deps, ...deps.operator, auth });
  // The operator's page needs the admin API, and its assets come with the playback page's (recording routes).
  if (deps.operator && deps.recordings && deps.playbackPage) registerOperatorPageRoutes(app, deps.playbackPage);

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', { config: OPERATIONS.metrics }, async (req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }
  app.get('/healthz', { config: OPERATIONS.healthz }, async (req, reply) => reply.type('application/json').send({ status: 'ok' }));
  app.get('/readyz', { config: OPERATIONS.readyz }, async (req, reply) => {
    if (deps.draining?.()) return reply.code(503).type('application/json').send({ status: 'draining' });
    try {
      await deps.ready();
      return reply.type('application/json').send({ status: 'ready' });
    } catch (e) {
      const check = readinessCheckOf(e);
      req.log.warn({ check, reason: (e as Error).message }, 'not ready');
      return reply.code(503).type('application/json').send({ status: 'unavailable', check });
    }
  });
  // Built once, on the first call: by then every route (plugins' too) is registered.
  let document: string | undefined;
  app.get('/openapi.json', { config: OPERATIONS.openapi }, async (req, reply) => {
    document ??= JSON.stringify(openApiDocument(routes, { version: pkg.version }));
    return reply.type('application/json').send(document);
  });
  return app;
}

