/**
 * Composition root: config -> adapters -> services -> servers. No module state: everything a
 * process runs hangs off the object createApp() returns.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/api-server.js';
import { AuditService } from './audit/audit-service.js';
import { Auditor } from './audit/auditor.js';
import { Backends } from './backends/drivers.js';
import { systemClock, type Clock } from './clock.js';
import { consoleBaseUrl, listenerUrl, type Config, type ListenAddress } from './config/config.js';
import { ConfigError, MasterKeyError, NotReadyError } from './errors.js';
import { IamAdminService } from './identity/iam-admin-service.js';
import { IdentityService } from './identity/identity-service.js';
import { LoginThrottle } from './identity/login-throttle.js';
import { SignatureLockout } from './identity/signature-lockout.js';
import { InventoryService } from './inventory/inventory-service.js';
import { createLogger, defaultLogFormat, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { ConsoleProxy, defaultAllowedOrigins, type StaticHandler } from './proxy/proxy-server.js';
import { accepts, checkMasterKey, storedKeys, type KeyCheckOutcome } from './secrets/key-check.js';
import { createMasterKeyFile, masterKeySource, readMasterKeys } from './secrets/master-key.js';
import { reloadTls } from './util/tls.js';
import { createStaticHandler } from './web/static-handler.js';
import { ScreenshotService } from './screenshot/screenshot-service.js';
import { RecordingService } from './recording/recording-service.js';
import { join } from 'node:path';
import { SecretBox } from './secrets/secret-box.js';
import { describePostgresUrl } from './store/postgres/postgres-database.js';
import { openPostgresStores } from './store/postgres/postgres-stores.js';
import { openSqliteStores } from './store/sqlite/sqlite-stores.js';
import type { Stores } from './store/stores.js';
import { SessionService } from './sessions/session-service.js';
import { ChangeFollower } from './sessions/change-follower.js';
import { PolicyCachingRecordingStore } from './recording/policy-cache.js';
import { ConsoleTokenService } from './tokens/console-token-service.js';
import { RemoteConsoleService } from './tokens/remote-console-service.js';
import { FailureStreak } from './util/failure-streak.js';
import { SerialHub } from './serial/serial-hub.js';
import { ConsoleOutputService } from './serial/console-output-service.js';
import { registeredRoutes, type RegisteredRoute } from './api/openapi.js';

export type Role = 'serve' | 'api' | 'proxy';

/** What tests (and only tests) may replace; production passes nothing. */
export interface AppOverrides {
  clock?: Clock;
  logger?: Logger;
  stores?: Stores;
  /** Serves the console page's files (the proxy mounts it). */
  staticHandler?: StaticHandler;
  /** Serves the playback page's files (the API mounts it). */
  playbackPage?: StaticHandler;
}

/**
 * Whether opening may create what is missing: the data directory, the store and the master key
 * file. Only the commands that run the service (`serve`, `api`, `proxy`) and `init` create;
 * every other command opens what exists and says so when it does not.
 */
export type OpenMode = 'create' | 'existing';

/** Which master key the services run with, and how it was checked against the store. */
export interface MasterKeyInfo {
  readonly keyId: string;
  /** E.g. `the key file /srv/data/master.key` or `masterKey from environment ECS_CONSOLE_MASTER_KEY`. */
  readonly source: string;
  /** The key file was created by this process. */
  readonly created: boolean;
  readonly check: KeyCheckOutcome;
}

export interface Services {
  readonly config: Config;
  readonly masterKey: MasterKeyInfo;
  readonly clock: Clock;
  readonly log: Logger;
  readonly stores: Stores;
  readonly box: SecretBox;
  readonly identity: IdentityService;
  /** The identity lifecycle (keys, temporary credentials, users, projects) for the IAM API and the CLI. */
  readonly iam: IamAdminService;
  /** Password-login throttling of this node (its gate bounds concurrent password hashing). */
  readonly logins: LoginThrottle;
  readonly inventory: InventoryService;
  readonly consoleTokens: ConsoleTokenService;
  readonly auditor: Auditor;
  /** Session recording policies, recorders and recordings. */
  readonly recordings: RecordingService;
  readonly audit: AuditService;
  readonly sessions: SessionService;
  /**
   * Follows the change feed for the node's caches of keys, users and servers; started by the
   * service roles (a CLI command never trusts, so never uses, the caches).
   */
  readonly follower: ChangeFollower;
  /** Closes the stores. */
  close(): Promise<void>;
}

/** Opens (and migrates) the configured store; with mode `existing`, only a store that exists. */
export async function openStores(config: Config, log?: Logger, mode: OpenMode = 'create'): Promise<Stores> {
  const create = mode === 'create';
  if (config.store.startsWith('sqlite:')) return openSqliteStores(config.store.slice('sqlite:'.length), { busyTimeoutMs: config.sqliteBusyTimeoutMs, create });
  // PostgreSQL adapter: one database shared by several API and proxy nodes.
  if (/^postgres(ql)?:\/\//.test(config.store)) return openPostgresStores(config.store, { create, ...(log ? { log: log.child({ component: 'store' }) } : {}) });
  throw new ConfigError('store', 'expected sqlite:<path> or postgres://...');
}

/** The configured store as messages show it (no password). */
export function describeStore(config: Pick<Config, 'store'>): string {
  return config.store.startsWith('sqlite:') ? config.store : describePostgresUrl(config.store);
}

/**
 * The master key for `stores`, checked against the store's key check (recorded when the store
 * has none). A key file is created only in mode `create`, and only for a store that holds no
 * key check and no secret: a missing key file never silently becomes a new key.
 */
async function openMasterKey(config: Config, stores: Stores, mode: OpenMode, now: number): Promise<{ box: SecretBox; info: MasterKeyInfo }> {
  const source = masterKeySource(config);
  const store = describeStore(config);
  let keys = readMasterKeys(config);
  let created = false;
  if (!keys) {
    const unset = `masterKey is not set (environment ECS_CONSOLE_MASTER_KEY or a config file) and the key file ${source.path} does not exist`;
    if (mode === 'existing') throw new MasterKeyError(`no master key for the store ${store}: ${unset}; this command creates no key`);
    const held = await storedKeys(stores.keyChecks);
    if (held) throw new MasterKeyError(`no master key: ${unset}, but the store ${store} holds ${held}: restore the key file (mode 0600) or set masterKey; a new key would open none of its secrets`);
    keys = [createMasterKeyFile(config.dataDir)];
    created = true;
  }
  const box = new SecretBox(keys);
  const check = await checkMasterKey(stores.keyChecks, box, now, { key: source.description, store });
  return { box, info: { keyId: box.keyId, source: source.description, created, check } };
}

/**
 * Builds every domain service over the configured store (used by servers and CLI commands alike).
 * Refuses (MasterKeyError) a master key that is not the store's; see OpenMode for what is created.
 */
export async function createServices(config: Config, overrides: AppOverrides = {}, mode: OpenMode = 'existing'): Promise<Services> {
  const clock = overrides.clock ?? systemClock;
  const log = overrides.logger ?? createLogger({ level: config.logLevel, format: config.logFormat ?? defaultLogFormat(process.stdout) });
  const stores = overrides.stores ?? (await openStores(config, log, mode));
  let box: SecretBox;
  let masterKey: MasterKeyInfo;
  try {
    ({ box, info: masterKey } = await openMasterKey(config, stores, mode, clock.now()));
  } catch (e) {
    if (!overrides.stores) await stores.close();
    throw e;
  }
  if (masterKey.check.kind === 'recorded') {
    const c = masterKey.check;
    log.info({ keyId: c.keyId, source: masterKey.source, from: c.from, secretsProbed: c.secretsProbed }, 'master key check recorded in the store');
    if (c.secretsUnreadable > 0) {
      log.warn({ keyId: c.keyId, secretsUnreadable: c.secretsUnreadable, secretsProbed: c.secretsProbed }, 'some stored secrets do not open with this master key: they were sealed with another key and stay unusable');
    }
  }
  const auditor = new Auditor(stores.audit, clock, config.nodeId, log);
  const lockout = new SignatureLockout(stores.signatureFailures, clock, {
    threshold: config.akLockThreshold, lockMs: config.akLockSeconds * 1000, maxRows: config.akFailureMaxRecords,
  }, auditor, log.child({ component: 'identity' }));
  const logins = new LoginThrottle(clock, {
    concurrency: config.iamLoginConcurrency, queue: config.iamLoginQueue, pendingPerAddress: config.iamLoginPendingPerAddress,
    failuresPerAddress: config.iamLoginFailuresPerAddress, failuresPerUser: config.iamLoginFailuresPerUser,
  });
  // Read the feed at least three times within the lag the caches allow.
  const follower = new ChangeFollower(stores.changes, {
    pollMs: Math.min(config.changePollIntervalMs, Math.floor(config.cacheFeedLagMs / 3)), maxLagMs: config.cacheFeedLagMs,
  }, clock, log.child({ component: 'cache' }));
  // An entry lives at most a minute whatever the feed says: a bound on an invalidation never appended.
  const cache = { maxEntries: config.cacheEntries, maxAgeMs: 60_000, trusted: () => follower.trusted() };
  const identity = new IdentityService(stores.identity, box, clock, {
    iamTokenTtlMs: config.iamTokenTtlSeconds * 1000,
    maxSkewMs: config.signatureMaxSkewSeconds * 1000,
  }, { lockout, logins }, cache);
  const inventory = new InventoryService(stores.servers, stores.consoleTokens, stores.changes, box, clock, auditor, cache);
  // The recording policies a session's setup asks for, from the same kind of cache.
  const recordingStore = new PolicyCachingRecordingStore(stores.recordings, stores.changes, clock, cache);
  follower.onInvalidate((i) => {
    identity.invalidate(i);
    inventory.invalidate(i);
    recordingStore.invalidate(i);
  });
  const consoleTokens = new ConsoleTokenService(stores.consoleTokens, clock, config.consoleTokenTtlSeconds * 1000);
  const iam = new IamAdminService(identity, stores.identity, stores.consoleTokens, stores.changes, auditor, box, clock);
  const recordings = new RecordingService(recordingStore, box, clock, {
    dir: config.recordingDir ?? join(config.dataDir, 'recordings'), flushMs: config.recordingFlushMs, nodeId: config.nodeId,
  }, log.child({ component: 'recording' }), {
    projectOf: async (scope, id) => (scope === 'server' ? (await inventory.findServer(id))?.projectId ?? null : (await stores.identity.getProject(id))?.id ?? null),
  });
  const audit = new AuditService(stores.audit, clock, config.auditRetentionDays);
  const sessions = new SessionService(stores.sessions, stores.changes, inventory, auditor, clock, config.sessionStaleSeconds * 1000);
  return {
    config, masterKey, clock, log, stores, box, identity, iam, logins, inventory, consoleTokens, auditor, recordings, audit, sessions, follower,
    close: async () => {
      follower.stop();
      await stores.close();
    },
  };
}

/**
 * Takes the master key ring of `next` (the key file read again, or `masterKey`) when its first
 * key, which seals, is a key of the store; keeps the current ring otherwise (logged at error).
 */
async function reloadKeyRing(services: Services, next: Config): Promise<ReloadResult['masterKey']> {
  const { box, log } = services;
  const source = masterKeySource(next).description;
  try {
    const keys = readMasterKeys(next);
    if (!keys) throw new MasterKeyError(`${source} holds no key`);
    const candidate = new SecretBox(keys);
    if (candidate.keyIds.join(',') === box.keyIds.join(',')) return 'unchanged';
    const checks = await services.stores.keyChecks.listKeyChecks();
    if (!accepts(candidate, checks)) {
      throw new MasterKeyError(`its first key (key id ${candidate.keyId}, which seals) is not a key of the store (${checks.map((c) => c.keyId).join(', ')}): record it with \`ecs-console master-key add\` first`);
    }
    const before = box.keyIds;
    box.replaceKeys(keys);
    // SKs opened with the previous ring are dropped (they are opened again with this one).
    services.follower.applyLocal('all');
    log.info({ keyIds: box.keyIds, before, source }, 'master key ring reloaded');
    return 'reloaded';
  } catch (e) {
    log.error({ source, keyIds: box.keyIds, error: (e as Error).message }, 'master key ring not reloaded; the current keys stay in use');
    return 'kept-previous';
  }
}

/** The backend drivers over the services' store (its locks) and config (hypervisor TLS files). Throws ConfigError for unusable TLS files. */
export function createBackends(services: Pick<Services, 'config' | 'stores' | 'clock' | 'log'>): Backends {
  return new Backends({ config: services.config, locks: services.stores.backendLocks, clock: services.clock, log: services.log.child({ component: 'backends' }) });
}

export interface StartedAddresses {
  api?: ListenAddress;
  proxy?: ListenAddress;
}

export interface App {
  readonly services: Services;
  readonly metrics: Metrics;
  /** The console proxy, once started (roles serve and proxy). */
  readonly proxy: ConsoleProxy | null;
  /** Every route registered on the API listener (roles serve and api, once started; empty otherwise). */
  apiRoutes(): readonly RegisteredRoute[];
  /** Listens on the configured addresses; returns the actual ones (port 0 resolved). */
  start(): Promise<StartedAddresses>;
  /**
   * Applies what may change without a restart (SIGHUP): the TLS certificates and keys of both
   * listeners and the proxy's hypervisor TLS files (CA, client certificate), for new connections
   * (open sessions and calls keep theirs), the log level, and the master key ring (a rotation:
   * docs/deploy.md). Files that cannot be used leave the current ones in place, and a ring whose
   * first key is not a key of the store is not taken (both logged at error). Never rejects.
   */
  reload(next: Config): Promise<ReloadResult>;
  /** Stops listening, drains, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/** What a reload applied. */
export interface ReloadResult {
  readonly logLevel: Config['logLevel'];
  /** Per TLS listener, and `backend` for the hypervisor TLS files: whether they were replaced. */
  readonly tls: Readonly<Partial<Record<'api' | 'proxy' | 'backend', 'reloaded' | 'kept-previous'>>>;
  /** Whether the master key ring was replaced, was the same, or could not be used. */
  readonly masterKey: 'reloaded' | 'unchanged' | 'kept-previous';
}

function addressOf(server: { address(): AddressInfo | string | null }): ListenAddress {
  const a = server.address();
  if (!a || typeof a === 'string') throw new Error('server is not listening on TCP');
  return { host: a.address, port: a.port };
}

export async function createApp(config: Config, role: Role = 'serve', overrides: AppOverrides = {}): Promise<App> {
  const services = await createServices(config, overrides, 'create');
  const { log, clock } = services;
  const metrics = new Metrics();
  metrics.watchCaches(() => ({ ...services.identity.cacheStats(), servers: services.inventory.cacheStats() }), () => services.follower.trusted());
  let api: FastifyInstance | null = null;
  let proxy: ConsoleProxy | null = null;
  let backends: Backends | null = null;
  let serial: SerialHub | null = null;
  let proxyAddress: ListenAddress = config.proxyListen;
  let purgeTimer: NodeJS.Timeout | null = null;
  let stopped: Promise<void> | null = null;
  /** Set when stopping starts: /readyz answers 503 on both listeners from then on. */
  let stopping = false;
  const purgeStreak = new FailureStreak(log, 'purging expired rows', clock);

  const remoteConsole = new RemoteConsoleService(
    services.identity, services.inventory, services.consoleTokens, services.auditor,
    (az) => consoleBaseUrl(config, az, proxyAddress), config.consoleUrlTLength,
  );

  /**
   * Readiness (/readyz of each listener): the store can be written now (a bounded probe; a locked
   * table fails it), the master key that seals (the ring's first) opens one of the store's key
   * checks (a rotation elsewhere may have retired it), and the listener asked accepts (the proxy's:
   * also below `proxyMaxSessions`). A drain answers 503 before any of this, its listeners open.
   */
  const ready = (listener: 'api' | 'proxy') => async (): Promise<void> => {
    try {
      await services.stores.ping();
    } catch (e) {
      throw new NotReadyError('store', `the store cannot be written now: ${(e as Error).message}`, { cause: e });
    }
    let checks;
    try {
      checks = await services.stores.keyChecks.listKeyChecks();
    } catch (e) {
      throw new NotReadyError('store', `the store's key checks cannot be read: ${(e as Error).message}`, { cause: e });
    }
    if (!accepts(services.box, checks)) {
      throw new NotReadyError('master-key', `the master key that seals (key id ${services.box.keyId}) is not a key of the store any more (its keys: ${checks.map((c) => c.keyId).join(', ') || 'none'}): reload or restart this node with the store's key`);
    }
    const refusing = listener === 'api' ? (api && !api.server.listening ? 'the API listener is closed' : null) : proxy?.notAccepting();
    if (refusing) throw new NotReadyError('listener', refusing);
  };

  const purge = async (): Promise<void> => {
    try {
      const now = clock.now();
      // Deletes are idempotent: several nodes purging at once do no harm.
      const [c, i, ch, st, sf, rec, au] = await Promise.all([
        services.consoleTokens.purge(), services.identity.purgeIamTokens(),
        services.stores.changes.purgeChanges(now - config.changeRetentionSeconds * 1000),
        services.stores.sessions.purgeStaleSessions(now - config.sessionStaleSeconds * 1000),
        services.identity.purgeSignatureFailures(),
        // Past their retention, then the oldest over a project's quota: the files go with the rows.
        services.recordings.purge(),
        // Audit records past auditRetentionDays.
        services.audit.purge(),
      ]);
      purgeStreak.succeeded();
      if (c + i + ch + st + sf + rec + au > 0) log.debug({ consoleTokens: c, iamTokens: i, changes: ch, staleSessions: st, signatureFailures: sf, recordings: rec, auditRecords: au }, 'purged expired rows');
    } catch (e) {
      purgeStreak.failed(e);
    }
  };

  return {
    services,
    metrics,
    apiRoutes: () => (api ? registeredRoutes(api) : []),
    get proxy() {
      return proxy;
    },
    async reload(next) {
      const tls: Partial<Record<'api' | 'proxy' | 'backend', 'reloaded' | 'kept-previous'>> = {};
      const listeners = [
        { side: 'api', on: api !== null, tls: config.apiTlsCert !== null || next.apiTlsCert !== null, cert: next.apiTlsCert, run: () => reloadTls(api!.server, next, 'api') },
        { side: 'proxy', on: proxy !== null, tls: config.proxyTlsCert !== null || next.proxyTlsCert !== null, cert: next.proxyTlsCert, run: () => proxy!.reloadTls(next) },
        { side: 'backend', on: backends !== null, tls: config.backendTlsCa !== null || next.backendTlsCa !== null, cert: next.backendTlsCert, run: () => backends!.reloadTls(next) },
      ] as const;
      for (const l of listeners) {
        if (!l.on || !l.tls) continue;
        try {
          l.run();
          tls[l.side] = 'reloaded';
        } catch (e) {
          tls[l.side] = 'kept-previous';
          log.error({ listener: l.side, cert: l.cert, error: (e as Error).message }, 'TLS certificate reload failed; new connections keep the previous certificate');
        }
      }
      // The new level first: the lines below are logged as the operator now wants.
      log.level = next.logLevel;
      const masterKey = await reloadKeyRing(services, next);
      log.info({ logLevel: next.logLevel, tls, masterKey, keyIds: services.box.keyIds }, 'configuration reloaded');
      return { logLevel: next.logLevel, tls, masterKey };
    },
    async start() {
      const out: StartedAddresses = {};
      backends = createBackends(services);
      // Serial ports held by this node: relayed by its proxy, read by its API's output calls.
      const hub = new SerialHub(
        { backends, inventory: services.inventory, store: services.stores.serialOutput, clock, log: log.child({ component: 'serial' }), metrics },
        { nodeId: config.nodeId },
      );
      serial = hub;
      if (role === 'serve' || role === 'proxy') {
        proxy = new ConsoleProxy({
          config, clock, log: log.child({ component: 'proxy' }), metrics, tokens: services.consoleTokens, inventory: services.inventory, backends,
          auditor: services.auditor, sessions: services.stores.sessions, follower: services.follower,
          ready: ready('proxy'), staticHandler: overrides.staticHandler ?? createStaticHandler(), serial: hub, recordings: services.recordings,
          credentialStands: (issuedBy, userId) => services.iam.credentialStands(issuedBy, userId),
        });
        proxyAddress = await proxy.listen(config.proxyListen, (actual) => defaultAllowedOrigins(config, actual));
        // Same-process changes close sessions at once; other nodes' arrive through the change feed.
        const p = proxy;
        services.inventory.onChange((c) => void p.applyChange({ kind: c.reason, serverId: c.serverId, sessionId: null, at: clock.now(), actor: c.actor ?? null }));
        services.iam.onRevoke((r) => void p.applyChange({ kind: 'credential-revoked', serverId: null, sessionId: null, at: r.at, credential: r.credential }));
        out.proxy = proxyAddress;
        log.info({ address: proxyAddress, url: listenerUrl(config, 'proxy', proxyAddress), origins: [...proxy.origins] }, 'console proxy listening');
      }
      // After the proxy's: its sessions are closed with the reason first, then the port let go.
      services.inventory.onChange(async (c) => {
        if (c.reason === 'server-deleted') await services.stores.serialOutput.deleteSerialOutput(c.serverId);
        hub.release(c.serverId, c.reason === 'server-deleted' ? 'The server was deleted.' : c.reason === 'server-stopped' ? 'The server was stopped.' : 'The server\'s console was moved.');
      });
      if (role === 'serve' || role === 'api') {
        backends ??= createBackends(services);
        const screenshots = new ScreenshotService(services.inventory, backends, clock, {
          perServerLimit: config.screenshotPerServerPerMinute, perServerWindowMs: 60_000,
          timeoutMs: config.screenshotTimeoutSeconds * 1000, jpegQuality: 85,
        });
        api = buildApi({
          screenshots, auditor: services.auditor, recordings: services.recordings, playbackPage: overrides.playbackPage ?? createStaticHandler({ pages: { '/playback.html': 'playback.html', '/operator/': 'operator.html' } }),
          config, clock, log, identity: services.identity, iam: services.iam, inventory: services.inventory, remoteConsole, metrics,
          observe: (route, method, status, seconds) => metrics.observeApi(route, method, status, seconds),
          ready: ready('api'), draining: () => stopping,
          consoleOutput: new ConsoleOutputService(services.identity, services.inventory, hub, services.auditor), consoleTokens: services.consoleTokens,
          operator: { sessions: services.sessions, audit: services.audit, auditor: services.auditor },
        });
        await api.listen({ host: config.apiListen.host, port: config.apiListen.port });
        out.api = addressOf(api.server);
        log.info({ address: out.api, url: listenerUrl(config, 'api', out.api) }, 'API listening');
      }
      // Last, as the proxy read the feed's end right after it listened: a session set up before
      // this first read and a change appended meanwhile are no different from before.
      await services.follower.start();
      purgeTimer = setInterval(() => void purge(), config.tokenPurgeIntervalSeconds * 1000);
      purgeTimer.unref();
      return out;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        if (purgeTimer) clearInterval(purgeTimer);
        // Both listeners answer /readyz 503 from now on. The proxy keeps listening while its
        // sessions drain, and so does the API of the same process; then both close.
        await proxy?.stop(config.proxyDrainSeconds * 1000);
        // The recordings of the sessions just closed are written out before the store closes.
        await services.recordings.stop();
        await api?.close();
        await serial?.stop();
        await services.close();
      })();
      return stopped;
    },
  };
}
