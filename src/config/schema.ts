/**
 * The one configuration schema: every option's type, default, bounds, sources and help line.
 * `docs/config.md` is generated from this table (`ecs-console config-doc`) and checked by a test.
 */

/** A listen address: host and port (port 0 = any free port). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export type OptionType = 'string' | 'int' | 'bool' | 'listen' | 'url' | 'enum' | 'map' | 'list';

export interface OptionDef {
  /** Key in the config object and in the JSON config file. */
  readonly key: string;
  readonly type: OptionType;
  readonly help: string;
  /** Default value (already parsed). `null` = unset. */
  readonly default: unknown;
  /** Environment variable, when the option may come from the environment. */
  readonly env?: string;
  /** Command-line flag (without leading dashes), when the option may come from a flag. */
  readonly flag?: string;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  /** Options only meaningful in a file (maps). */
  readonly fileOnly?: boolean;
}

const E = 'ECS_CONSOLE_';

/** Every option. Order is the order of docs/config.md. */
export const OPTIONS: readonly OptionDef[] = [
  // --- general
  { key: 'dataDir', type: 'string', default: './data', env: `${E}DATA_DIR`, flag: 'data-dir', help: 'Directory for the SQLite database, the master key file and demo.json (created 0700).' },
  { key: 'store', type: 'string', default: null, env: `${E}STORE`, flag: 'store', help: 'Store: `sqlite:<path>` or `postgres://user@host:port/db`. Default `sqlite:<dataDir>/ecs-console.db`.' },
  { key: 'masterKey', type: 'string', default: null, env: `${E}MASTER_KEY`, help: 'Base64 of 32 bytes encrypting secret keys and VNC passwords at rest (AES-256-GCM). Default: `<dataDir>/master.key`, generated 0600 on first start. Every node of a fleet needs the same key.' },
  { key: 'nodeId', type: 'string', default: null, env: `${E}NODE_ID`, flag: 'node-id', help: 'Name of this node in sessions and audit records. Default `<hostname>-<pid>`.' },
  { key: 'logLevel', type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: `${E}LOG_LEVEL`, flag: 'log-level', help: 'Log level (JSON lines on stdout).' },
  // --- API
  { key: 'apiListen', type: 'listen', default: { host: '127.0.0.1', port: 8080 }, env: `${E}API_LISTEN`, flag: 'api-listen', help: 'API `host:port`.' },
  { key: 'apiBodyLimitBytes', type: 'int', default: 65536, min: 1024, max: 16777216, env: `${E}API_BODY_LIMIT_BYTES`, help: 'Largest request body the API accepts (413 `APIGW.0201` beyond).' },
  { key: 'apiRateLimitPerCredential', type: 'int', default: 1200, min: 0, max: 10000000, env: `${E}API_RATE_LIMIT_PER_CREDENTIAL`, help: 'API requests per minute per credential (AK or IAM user); 0 = unlimited. Beyond: 429 `APIGW.0308`.' },
  { key: 'apiRateLimitPerAddress', type: 'int', default: 2400, min: 0, max: 10000000, env: `${E}API_RATE_LIMIT_PER_ADDRESS`, help: 'API requests per minute per source address; 0 = unlimited.' },
  { key: 'apiTrustProxy', type: 'bool', default: false, env: `${E}API_TRUST_PROXY`, help: 'Take the client address from `X-Forwarded-For` (only behind a trusted load balancer).' },
  { key: 'apiRequestTimeoutSeconds', type: 'int', default: 30, min: 1, max: 3600, env: `${E}API_REQUEST_TIMEOUT_SECONDS`, help: 'Time allowed to receive a whole request (headers and body); slower clients are cut off.' },
  { key: 'apiHeadersTimeoutSeconds', type: 'int', default: 10, min: 1, max: 3600, env: `${E}API_HEADERS_TIMEOUT_SECONDS`, help: 'Time allowed to receive the request headers.' },
  { key: 'signatureMaxSkewSeconds', type: 'int', default: 900, min: 1, max: 86400, env: `${E}SIGNATURE_MAX_SKEW_SECONDS`, help: 'Largest difference between `X-Sdk-Date` and our clock (Huawei: 15 minutes).' },
  { key: 'akLockThreshold', type: 'int', default: 5, min: 1, max: 1000, env: `${E}AK_LOCK_THRESHOLD`, help: 'Consecutive signature failures that lock an access key.' },
  { key: 'akLockSeconds', type: 'int', default: 300, min: 1, max: 86400, env: `${E}AK_LOCK_SECONDS`, help: 'How long a locked access key stays locked.' },
  { key: 'iamTokenTtlSeconds', type: 'int', default: 86400, min: 60, max: 604800, env: `${E}IAM_TOKEN_TTL_SECONDS`, help: 'Lifetime of IAM tokens from `POST /v3/auth/tokens` (Huawei: 24 h).' },
  // --- console URL and tokens
  { key: 'publicUrl', type: 'url', default: null, env: `${E}PUBLIC_URL`, flag: 'public-url', help: 'Console base URL put in returned URLs (`<publicUrl>/vnc_auto.html?token=...`). Default: the proxy\'s own `http://host:port`.' },
  { key: 'publicUrlByAz', type: 'map', default: {}, fileOnly: true, help: 'Per availability zone console base URLs, e.g. `{"az1": "https://console-az1.example.com"}`; others use `publicUrl`.' },
  { key: 'consoleTokenTtlSeconds', type: 'int', default: 600, min: 5, max: 86400, env: `${E}CONSOLE_TOKEN_TTL_SECONDS`, help: 'Lifetime of an unused console token (Nova: 600 s).' },
  { key: 'consoleUrlTLength', type: 'string', default: '70', env: `${E}CONSOLE_URL_TLENGTH`, help: 'Opaque `tLength` parameter kept in console URLs for Huawei\'s URL shape.' },
  { key: 'tokenPurgeIntervalSeconds', type: 'int', default: 60, min: 1, max: 86400, env: `${E}TOKEN_PURGE_INTERVAL_SECONDS`, help: 'How often expired console and IAM tokens are deleted.' },
  // --- proxy
  { key: 'proxyListen', type: 'listen', default: { host: '127.0.0.1', port: 6080 }, env: `${E}PROXY_LISTEN`, flag: 'proxy-listen', help: 'Console proxy `host:port` (page and WebSocket).' },
];

const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));

export function optionDef(key: string): OptionDef | undefined {
  return BY_KEY.get(key);
}
