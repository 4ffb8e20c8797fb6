/**
 * Loading and validating configuration: flags > environment (`ECS_CONSOLE_*`) > file > defaults.
 * The result is frozen and passed down; no module reads the environment or files for config.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { OPTIONS, type ListenAddress, type OptionDef } from './schema.js';

export type { ListenAddress } from './schema.js';

/** The validated configuration. Keys match `OPTIONS`. */
export interface Config {
  readonly dataDir: string;
  /** Resolved store URL: `sqlite:<absolute path>` or `postgres://...`. */
  readonly store: string;
  readonly sqliteBusyTimeoutMs: number;
  readonly masterKey: string | null;
  readonly nodeId: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Null: chosen by whether standard output is a terminal (see log.ts defaultLogFormat). */
  readonly logFormat: 'json' | 'pretty' | null;
  readonly trustProxy: boolean;
  readonly httpHeadersTimeoutSeconds: number;
  readonly httpRequestTimeoutSeconds: number;
  readonly apiListen: ListenAddress;
  readonly apiBodyLimitBytes: number;
  readonly apiRateLimitPerCredential: number;
  readonly apiRateLimitPerAddress: number;
  readonly apiMaxConnections: number;
  readonly apiTlsCert: string | null;
  readonly apiTlsKey: string | null;
  readonly signatureMaxSkewSeconds: number;
  readonly akLockThreshold: number;
  readonly akLockSeconds: number;
  readonly akFailureMaxRecords: number;
  readonly iamLoginConcurrency: number;
  readonly iamLoginQueue: number;
  readonly iamLoginPendingPerAddress: number;
  readonly iamLoginFailuresPerAddress: number;
  readonly iamLoginFailuresPerUser: number;
  readonly iamTokenTtlSeconds: number;
  readonly publicUrl: string | null;
  readonly publicUrlByAz: Readonly<Record<string, string>>;
  readonly consoleTokenTtlSeconds: number;
  readonly consoleUrlTLength: string;
  readonly auditRetentionDays: number;
  readonly adminBodyLimitBytes: number;
  readonly tokenPurgeIntervalSeconds: number;
  readonly proxyListen: ListenAddress;
  readonly proxyTlsCert: string | null;
  readonly proxyTlsKey: string | null;
  readonly proxyAllowedOrigins: readonly string[] | null;
  readonly proxyAllowMissingOrigin: boolean;
  readonly proxyHandshakeTimeoutSeconds: number;
  readonly proxyBackendConnectTimeoutSeconds: number;
  readonly proxyIdleTimeoutSeconds: number;
  readonly proxyMaxSessionSeconds: number;
  readonly proxyPingIntervalSeconds: number;
  readonly proxyMaxMessageBytes: number;
  readonly proxyMaxSessions: number;
  readonly proxyMaxSessionsPerProject: number;
  readonly proxyMaxSessionsPerServer: number;
  readonly proxyFailedTokenLimitPerMinute: number;
  readonly proxyDrainSeconds: number;
  readonly backendTlsCa: string | null;
  readonly backendTlsCert: string | null;
  readonly backendTlsKey: string | null;
  readonly backendOneTimePasswordSeconds: number;
  readonly backendManagementTimeoutSeconds: number;
  readonly screenshotPerServerPerMinute: number;
  readonly screenshotTimeoutSeconds: number;
  /** Absolute; null: `<dataDir>/recordings`. */
  readonly recordingDir: string | null;
  readonly recordingFlushMs: number;
  readonly changePollIntervalMs: number;
  readonly cacheEntries: number;
  readonly cacheFeedLagMs: number;
  readonly changeRetentionSeconds: number;
  readonly sessionHeartbeatSeconds: number;
  readonly sessionStaleSeconds: number;
  /**
   * Where each option's value came from, for messages: `default`, `file <path>`,
   * `environment <VAR>` or `flag --<name>`.
   */
  readonly sources: Readonly<Record<string, string>>;
}

export interface ConfigSources {
  /** Parsed flag values keyed by option key (strings as typed, or already-typed values). */
  flags?: Record<string, unknown>;
  /** Environment; `process.env` in production. */
  env?: Record<string, string | undefined>;
  /** Path of a JSON config file (`--config` / `ECS_CONSOLE_CONFIG`). */
  file?: string | null;
  /** Working directory for relative paths. */
  cwd?: string;
}

function parseListen(raw: string, opt: OptionDef): ListenAddress {
  // host:port; IPv6 as [::1]:port
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.\-]+)):(\d{1,5})$/.exec(raw.trim());
  if (!m) throw new ConfigError(opt.key, `expected host:port, got ${JSON.stringify(raw)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(opt.key, `port ${port} is above 65535`);
  return Object.freeze({ host: (m[1] ?? m[2]) as string, port });
}

function parseValue(opt: OptionDef, raw: unknown, source: string): unknown {
  const bad = (why: string): never => {
    throw new ConfigError(opt.key, `${why} (from ${source})`);
  };
  switch (opt.type) {
    case 'string':
      if (typeof raw !== 'string') bad(`expected a string, got ${typeof raw}`);
      if ((raw as string).length === 0) bad('must not be empty');
      return raw;
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) bad(`expected an integer, got ${JSON.stringify(raw)}`);
      if (opt.min !== undefined && n < opt.min) bad(`${n} is below the minimum ${opt.min}`);
      if (opt.max !== undefined && n > opt.max) bad(`${n} is above the maximum ${opt.max}`);
      return n;
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(1|true|yes|on)$/i.test(raw)) return true;
      if (typeof raw === 'string' && /^(0|false|no|off)$/i.test(raw)) return false;
      return bad(`expected true or false, got ${JSON.stringify(raw)}`);
    case 'enum':
      if (typeof raw !== 'string' || !opt.values?.includes(raw)) bad(`expected one of ${opt.values?.join(', ')}, got ${JSON.stringify(raw)}`);
      return raw;
    case 'listen':
      if (typeof raw !== 'string') bad('expected host:port');
      try {
        return parseListen(raw as string, opt);
      } catch (e) {
        return bad((e as Error).message.replace(/^.*?: /, ''));
      }
    case 'url':
      return parseBaseUrl(opt.key, raw, source);
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return Object.freeze([...raw]);
      if (typeof raw === 'string') return Object.freeze(raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0));
      return bad('expected a comma-separated list or an array of strings');
    case 'map': {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('expected an object of az -> URL');
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) out[k] = parseBaseUrl(`${opt.key}.${k}`, v, source);
      return Object.freeze(out);
    }
  }
}

/** An http(s) base URL without query, fragment or trailing slash. */
function parseBaseUrl(key: string, raw: unknown, source: string): string {
  if (typeof raw !== 'string') throw new ConfigError(key, `expected a URL (from ${source})`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(key, `not a valid URL: ${JSON.stringify(raw)} (from ${source})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(key, `must be http or https (from ${source})`);
  if (u.search || u.hash || u.username || u.password) throw new ConfigError(key, `must not have a query, fragment or credentials (from ${source})`);
  return u.toString().replace(/\/+$/, '');
}

/** An origin as browsers send it: `scheme://host[:port]`, lower-case, default port dropped. */
export function parseOrigin(key: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(key, `not an origin: ${JSON.stringify(raw)}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname.length > 1 || u.search || u.hash) {
    throw new ConfigError(key, `an origin is scheme://host[:port] with nothing after it, got ${JSON.stringify(raw)}`);
  }
  return u.origin;
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('config', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('config', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError('config', `${path} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

/**
 * Build the configuration from its sources. Throws `ConfigError` naming the first bad option.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {};
  const flags = sources.flags ?? {};
  const cwd = sources.cwd ?? process.cwd();
  const filePath = sources.file ?? env['ECS_CONSOLE_CONFIG'] ?? null;
  const file = filePath ? readFile(resolve(cwd, filePath)) : {};
  const known = new Set(OPTIONS.map((o) => o.key));
  for (const k of Object.keys(file)) {
    if (!known.has(k)) throw new ConfigError(k, `unknown option in ${filePath}`);
  }
  const out: Record<string, unknown> = {};
  const from: Record<string, string> = {};
  for (const opt of OPTIONS) {
    let value = opt.default;
    let source = 'default';
    if (opt.key in file) value = parseValue(opt, file[opt.key], (source = `file ${filePath}`));
    const envRaw = opt.env ? env[opt.env] : undefined;
    if (opt.env && envRaw !== undefined && envRaw !== '') value = parseValue(opt, envRaw, (source = `environment ${opt.env}`));
    const flagRaw = flags[opt.key];
    if (flagRaw !== undefined) value = parseValue(opt, flagRaw, (source = `flag --${opt.flag ?? opt.key}`));
    out[opt.key] = value;
    from[opt.key] = source;
  }
  out['sources'] = Object.freeze(from);
  const dataDir = resolve(cwd, out['dataDir'] as string);
  out['dataDir'] = dataDir;
  const store = (out['store'] as string | null) ?? `sqlite:${join(dataDir, 'ecs-console.db')}`;
  out['store'] = normaliseStore(store, cwd);
  out['nodeId'] ??= `${hostname()}-${process.pid}`;
  for (const side of ['api', 'proxy']) {
    const cert = out[`${side}TlsCert`];
    const key = out[`${side}TlsKey`];
    if ((cert === null) !== (key === null)) throw new ConfigError(`${side}TlsKey`, `${side}TlsCert and ${side}TlsKey go together`);
    if (cert !== null) out[`${side}TlsCert`] = resolve(cwd, cert as string);
    if (key !== null) out[`${side}TlsKey`] = resolve(cwd, key as string);
  }
  // A live node's rows must never look stale between two heartbeats (one may be late).
  if ((out['sessionStaleSeconds'] as number) < 2 * (out['sessionHeartbeatSeconds'] as number)) {
    throw new ConfigError('sessionStaleSeconds', `must be at least twice sessionHeartbeatSeconds (${out['sessionHeartbeatSeconds'] as number} s)`);
  }
  if ((out['backendTlsCert'] === null) !== (out['backendTlsKey'] === null)) throw new ConfigError('backendTlsKey', 'backendTlsCert and backendTlsKey go together');
  if (out['backendTlsCert'] !== null && out['backendTlsCa'] === null) throw new ConfigError('backendTlsCa', 'a client certificate (backendTlsCert) needs the CA of the hypervisors\' certificates (backendTlsCa)');
  for (const k of ['backendTlsCa', 'backendTlsCert', 'backendTlsKey', 'recordingDir']) if (out[k] !== null) out[k] = resolve(cwd, out[k] as string);
  if (out['proxyAllowedOrigins'] !== null) {
    out['proxyAllowedOrigins'] = Object.freeze((out['proxyAllowedOrigins'] as string[]).map((o) => parseOrigin('proxyAllowedOrigins', o)));
  }
  return Object.freeze(out) as unknown as Config;
}

function normaliseStore(store: string, cwd: string): string {
  if (store.startsWith('sqlite:')) {
    const p = store.slice('sqlite:'.length);
    if (p === '') throw new ConfigError('store', 'sqlite: needs a path, e.g. sqlite:./data/ecs-console.db');
    if (p === ':memory:') return store;
    return `sqlite:${isAbsolute(p) ? p : resolve(cwd, p)}`;
  }
  if (/^postgres(ql)?:\/\//.test(store)) {
    try {
      new URL(store);
    } catch {
      throw new ConfigError('store', 'not a valid postgres:// URL');
    }
    return store;
  }
  throw new ConfigError('store', 'expected sqlite:<path> or postgres://...');
}

/**
 * The URL of a listener as a client on this machine reaches it: `https` when the listener has a
 * certificate, a wildcard address (`0.0.0.0`, `::`) as 127.0.0.1, IPv6 in brackets.
 */
export function listenerUrl(config: Config, side: 'api' | 'proxy', address: ListenAddress): string {
  const tls = (side === 'api' ? config.apiTlsCert : config.proxyTlsCert) !== null;
  const h = address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  return `${tls ? 'https' : 'http'}://${h.includes(':') ? `[${h}]` : h}:${address.port}`;
}

/** The console base URL for an availability zone (per-AZ override, else publicUrl, else the proxy's own). */
export function consoleBaseUrl(config: Config, az: string, proxyAddress: ListenAddress): string {
  const byAz = config.publicUrlByAz[az];
  if (byAz) return byAz;
  if (config.publicUrl) return config.publicUrl;
  return listenerUrl(config, 'proxy', proxyAddress);
}

/** Markdown table of every option, for docs/config.md. */
export function configDoc(): string {
  const rows = OPTIONS.map((o) => {
    const def = o.default === null ? '(unset)' : o.type === 'listen' ? `\`${(o.default as ListenAddress).host}:${(o.default as ListenAddress).port}\`` : `\`${JSON.stringify(o.default)}\``;
    const bounds = o.min !== undefined ? ` (${o.min}..${o.max})` : o.values ? ` (${o.values.join(', ')})` : '';
    const src = [o.flag ? `\`--${o.flag}\`` : '', o.env ? `\`${o.env}\`` : '', '`' + o.key + '` in file'].filter(Boolean).join('<br>');
    return `| \`${o.key}\` | ${o.type}${bounds} | ${def} | ${src} | ${o.help.replace(/\|/g, '\\|')} |`;
  });
  return ['| Option | Type | Default | Set by | Meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}
