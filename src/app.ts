/**
 * Composition root: config -> adapters -> services -> servers. No module state: everything a
 * process runs hangs off the object createApp() returns.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/api-server.js';
import { Auditor } from './audit/auditor.js';
import { systemClock, type Clock } from './clock.js';
import { consoleBaseUrl, type Config, type ListenAddress } from './config/config.js';
import { ConfigError } from './errors.js';
import { IdentityService } from './identity/identity-service.js';
import { InventoryService } from './inventory/inventory-service.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { ConsoleProxy, STALE_MS, defaultAllowedOrigins, type StaticHandler } from './proxy/proxy-server.js';
import { loadMasterKey } from './secrets/master-key.js';
import { createStaticHandler } from './web/static-handler.js';
import { SecretBox } from './secrets/secret-box.js';
import { openPostgresStores } from './store/postgres/postgres-stores.js';
import { openSqliteStores } from './store/sqlite/sqlite-stores.js';
import type { Stores } from './store/stores.js';
import { ConsoleTokenService } from './tokens/console-token-service.js';
import { RemoteConsoleService } from './tokens/remote-console-service.js';

export type Role = 'serve' | 'api' | 'proxy';

/** What tests (and only tests) may replace; production passes nothing. */
export interface AppOverrides {
  clock?: Clock;
  logger?: Logger;
  stores?: Stores;
  /** Serves the console page's files (the proxy mounts it). */
  staticHandler?: StaticHandler;
}

export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
  readonly stores: Stores;
  readonly box: SecretBox;
  readonly identity: IdentityService;
  readonly inventory: InventoryService;
  readonly consoleTokens: ConsoleTokenService;
  readonly auditor: Auditor;
  /** Closes the stores. */
  close(): Promise<void>;
}

/** Opens (and migrates) the configured store. */
export async function openStores(config: Config, log?: Logger): Promise<Stores> {
  if (config.store.startsWith('sqlite:')) return openSqliteStores(config.store.slice('sqlite:'.length), { busyTimeoutMs: config.sqliteBusyTimeoutMs });
  // PostgreSQL adapter: one database shared by several API and proxy nodes.
  if (/^postgres(ql)?:\/\//.test(config.store)) return openPostgresStores(config.store, log ? { log: log.child({ component: 'store' }) } : {});
  throw new ConfigError('store', 'expected sqlite:<path> or postgres://...');
}

/** Builds every domain service over the configured store (used by servers and CLI commands alike). */
export async function createServices(config: Config, overrides: AppOverrides = {}): Promise<Services> {
  const clock = overrides.clock ?? systemClock;
  const log = overrides.logger ?? createLogger({ level: config.logLevel });
  const box = new SecretBox(loadMasterKey(config.masterKey, config.dataDir));
  const stores = overrides.stores ?? (await openStores(config, log));
  const identity = new IdentityService(stores.identity, box, clock, {
    iamTokenTtlMs: config.iamTokenTtlSeconds * 1000,
    maxSkewMs: config.signatureMaxSkewSeconds * 1000,
    lockThreshold: config.akLockThreshold,
    lockMs: config.akLockSeconds * 1000,
  });
  const inventory = new InventoryService(stores.servers, stores.consoleTokens, stores.changes, box, clock);
  const consoleTokens = new ConsoleTokenService(stores.consoleTokens, clock, config.consoleTokenTtlSeconds * 1000);
  const auditor = new Auditor(stores.audit, clock, config.nodeId, log);
  return { config, clock, log, stores, box, identity, inventory, consoleTokens, auditor, close: () => stores.close() };
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
  /** Listens on the configured addresses; returns the actual ones (port 0 resolved). */
  start(): Promise<StartedAddresses>;
  /** Stops listening, drains, closes the store. Idempotent. */
  stop(): Promise<void>;
}

function addressOf(server: { address(): AddressInfo | string | null }): ListenAddress {
  const a = server.address();
  if (!a || typeof a === 'string') throw new Error('server is not listening on TCP');
  return { host: a.address, port: a.port };
}

export async function createApp(config: Config, role: Role = 'serve', overrides: AppOverrides = {}): Promise<App> {
  const services = await createServices(config, overrides);
  const { log, clock } = services;
  const metrics = new Metrics();
  let api: FastifyInstance | null = null;
  let proxy: ConsoleProxy | null = null;
  let proxyAddress: ListenAddress = config.proxyListen;
  let purgeTimer: NodeJS.Timeout | null = null;
  let stopped: Promise<void> | null = null;

  const remoteConsole = new RemoteConsoleService(
    services.identity, services.inventory, services.consoleTokens, services.auditor,
    (az) => consoleBaseUrl(config, az, proxyAddress), config.consoleUrlTLength,
  );

  const purge = async (): Promise<void> => {
    try {
      const now = clock.now();
      // Deletes are idempotent: several nodes purging at once do no harm.
      const [c, i, ch, st] = await Promise.all([
        services.consoleTokens.purge(), services.identity.purgeIamTokens(),
        services.stores.changes.purgeChanges(now - 3600_000), services.stores.sessions.purgeStaleSessions(now - STALE_MS),
      ]);
      if (c + i + ch + st > 0) log.debug({ consoleTokens: c, iamTokens: i, changes: ch, staleSessions: st }, 'purged expired rows');
    } catch (e) {
      log.warn({ err: e }, 'token purge failed; will retry');
    }
  };

  return {
    services,
    metrics,
    get proxy() {
      return proxy;
    },
    async start() {
      const out: StartedAddresses = {};
      if (role === 'serve' || role === 'proxy') {
        proxy = new ConsoleProxy({
          config, clock, log: log.child({ component: 'proxy' }), metrics, tokens: services.consoleTokens, inventory: services.inventory,
          auditor: services.auditor, sessions: services.stores.sessions, changes: services.stores.changes,
          ready: () => services.stores.ping(), staticHandler: overrides.staticHandler ?? createStaticHandler(),
        });
        proxyAddress = await proxy.listen(config.proxyListen, (actual) => defaultAllowedOrigins(config, actual));
        // Same-process changes close sessions at once; other nodes' arrive through the change feed.
        const p = proxy;
        services.inventory.onChange((c) => void p.applyChange({ kind: c.reason, serverId: c.serverId, sessionId: null, at: clock.now() }));
        out.proxy = proxyAddress;
        log.info({ address: proxyAddress, origins: [...proxy.origins] }, 'console proxy listening');
      }
      if (role === 'serve' || role === 'api') {
        api = buildApi({
          config, clock, log, identity: services.identity, inventory: services.inventory, remoteConsole, metrics,
          observe: (route, method, status, seconds) => metrics.observeApi(route, method, status, seconds),
          ready: () => services.stores.ping(),
        });
        await api.listen({ host: config.apiListen.host, port: config.apiListen.port });
        out.api = addressOf(api.server);
        log.info({ address: out.api }, 'API listening');
      }
      purgeTimer = setInterval(() => void purge(), config.tokenPurgeIntervalSeconds * 1000);
      purgeTimer.unref();
      return out;
    },
    stop() {
      stopped ??= (async () => {
        if (purgeTimer) clearInterval(purgeTimer);
        await Promise.all([api?.close(), proxy?.stop(config.proxyDrainSeconds * 1000)]);
        await services.close();
      })();
      return stopped;
    },
  };
}
