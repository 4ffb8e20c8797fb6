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
  { key: 'dataDir', type: 'string', default: './data', env: `${E}DATA_DIR`, flag: 'data-dir', help: 'Directory for the SQLite database, the master key file and demo.json (created 0700 by `serve`, `api`, `proxy` or `init`; other commands create nothing).' },
  { key: 'store', type: 'string', default: null, env: `${E}STORE`, flag: 'store', help: 'Store: `sqlite:<path>` or `postgres://user@host:port/db`. Default `sqlite:<dataDir>/ecs-console.db`.' },
  { key: 'sqliteBusyTimeoutMs', type: 'int', default: 5000, min: 0, max: 600000, env: `${E}SQLITE_BUSY_TIMEOUT_MS`, help: 'SQLite: how long a write waits for another process\'s lock before the request fails (500 `Common.0001`, proxy 503).' },
  { key: 'masterKey', type: 'string', default: null, env: `${E}MASTER_KEY`, help: 'Base64 of 32 bytes encrypting secret keys and VNC passwords at rest (AES-256-GCM). Default: `<dataDir>/master.key`, created 0600 by `serve` or `init` for a new store only. The store records which key it was initialised with and refuses to start with another. Every node of a fleet needs the same key. During a rotation, a ring: keys separated by commas (in the key file, one a line), the first seals, all open; reloaded on SIGHUP (docs/deploy.md).' },
  { key: 'nodeId', type: 'string', default: null, env: `${E}NODE_ID`, flag: 'node-id', help: 'Name of this node in sessions and audit records. Default `<hostname>-<pid>`.' },
  { key: 'logLevel', type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: `${E}LOG_LEVEL`, flag: 'log-level', help: 'Log level (JSON lines on stdout). Reloaded on SIGHUP from the file and the environment (a flag stays as given).' },
  { key: 'logFormat', type: 'enum', values: ['json', 'pretty'], default: null, env: `${E}LOG_FORMAT`, flag: 'log-format', help: 'Log lines: `json` (one object a line, level names) or `pretty` (one readable line). Default: `pretty` when standard output is a terminal, `json` otherwise (a service manager, a pipe, a file).' },
  { key: 'trustProxy', type: 'bool', default: false, env: `${E}TRUST_PROXY`, help: 'Take client addresses from `X-Forwarded-For` (API and proxy). Only behind a load balancer that sets it.' },
  { key: 'httpHeadersTimeoutSeconds', type: 'int', default: 10, min: 1, max: 3600, env: `${E}HTTP_HEADERS_TIMEOUT_SECONDS`, help: 'API and proxy: time allowed to receive a request\'s headers (slowloris); checked every second.' },
  { key: 'httpRequestTimeoutSeconds', type: 'int', default: 30, min: 1, max: 3600, env: `${E}HTTP_REQUEST_TIMEOUT_SECONDS`, help: 'API and proxy: time allowed to receive a whole request, headers and body.' },
  // --- API
  { key: 'apiListen', type: 'listen', default: { host: '127.0.0.1', port: 8080 }, env: `${E}API_LISTEN`, flag: 'api-listen', help: 'API `host:port`.' },
  { key: 'apiBodyLimitBytes', type: 'int', default: 65536, min: 1024, max: 16777216, env: `${E}API_BODY_LIMIT_BYTES`, help: 'Largest request body the API accepts (413 `APIGW.0201` beyond).' },
  { key: 'adminBodyLimitBytes', type: 'int', default: 33554432, min: 65536, max: 1073741824, env: `${E}ADMIN_BODY_LIMIT_BYTES`, help: 'Largest request body of the admin API\'s bulk sync and server updates (a sync of 50,000 servers is about 8 MB).' },
  { key: 'apiRateLimitPerCredential', type: 'int', default: 1200, min: 0, max: 10000000, env: `${E}API_RATE_LIMIT_PER_CREDENTIAL`, help: 'API requests per minute per credential (AK or IAM user); 0 = unlimited. Beyond: 429 `APIGW.0308`.' },
  { key: 'apiRateLimitPerAddress', type: 'int', default: 2400, min: 0, max: 10000000, env: `${E}API_RATE_LIMIT_PER_ADDRESS`, help: 'API requests per minute per source address; 0 = unlimited.' },
  { key: 'apiMaxConnections', type: 'int', default: 10000, min: 10, max: 1000000, env: `${E}API_MAX_CONNECTIONS`, help: 'Most open TCP connections the API accepts at once; more are closed at once.' },
  { key: 'apiTlsCert', type: 'string', default: null, env: `${E}API_TLS_CERT`, help: 'PEM certificate (chain) file: the API serves HTTPS (TLS 1.2+, forward-secret AEAD suites only) with `Strict-Transport-Security`. Reloaded on SIGHUP.' },
  { key: 'apiTlsKey', type: 'string', default: null, env: `${E}API_TLS_KEY`, help: 'PEM private key file for `apiTlsCert`.' },
  { key: 'signatureMaxSkewSeconds', type: 'int', default: 900, min: 1, max: 86400, env: `${E}SIGNATURE_MAX_SKEW_SECONDS`, help: 'Largest difference between `X-Sdk-Date` and our clock (Huawei: 15 minutes).' },
  { key: 'akLockThreshold', type: 'int', default: 5, min: 1, max: 1000, env: `${E}AK_LOCK_THRESHOLD`, help: 'Consecutive signature failures of one (AK, source address) pair that lock that pair (the same AK from other addresses keeps working). Unknown AKs are counted the same way.' },
  { key: 'akLockSeconds', type: 'int', default: 300, min: 1, max: 86400, env: `${E}AK_LOCK_SECONDS`, help: 'How long a locked (AK, source address) pair stays locked; a pair\'s failures are forgotten this long after its last one. `ecs-console key unlock` lifts a lock at once.' },
  { key: 'akFailureMaxRecords', type: 'int', default: 100000, min: 100, max: 100000000, env: `${E}AK_FAILURE_MAX_RECORDS`, help: 'Most (AK, source address) failure records kept in the store; beyond, those expiring first are dropped (a flood of random AKs stays bounded). Expired records are deleted every `tokenPurgeIntervalSeconds`.' },
  { key: 'iamLoginConcurrency', type: 'int', default: 2, min: 1, max: 64, env: `${E}IAM_LOGIN_CONCURRENCY`, help: 'Password checks (scrypt, tens of milliseconds of CPU each) running at once on this node for `POST /v3/auth/tokens`.' },
  { key: 'iamLoginQueue', type: 'int', default: 8, min: 0, max: 10000, env: `${E}IAM_LOGIN_QUEUE`, help: 'Logins waiting for a password check on this node; beyond, 429 at once (a short queue keeps the wait of a good login short under a flood).' },
  { key: 'iamLoginPendingPerAddress', type: 'int', default: 2, min: 1, max: 1000, env: `${E}IAM_LOGIN_PENDING_PER_ADDRESS`, help: 'Logins one source address may have running or waiting; beyond, 429 at once.' },
  { key: 'iamLoginFailuresPerAddress', type: 'int', default: 20, min: 0, max: 1000000, env: `${E}IAM_LOGIN_FAILURES_PER_ADDRESS`, help: 'Failed logins per source address per minute (any user name) on this node; then 429, without checking passwords, until the minute ends. 0 = unlimited.' },
  { key: 'iamLoginFailuresPerUser', type: 'int', default: 10, min: 0, max: 1000000, env: `${E}IAM_LOGIN_FAILURES_PER_USER`, help: 'Failed logins per user name per minute (any address) on this node; then that name gets 429 until the minute ends, except from addresses it logged in from in the last 24 h. Unknown names are counted the same. 0 = unlimited.' },
  { key: 'iamTokenTtlSeconds', type: 'int', default: 86400, min: 60, max: 604800, env: `${E}IAM_TOKEN_TTL_SECONDS`, help: 'Lifetime of IAM tokens from `POST /v3/auth/tokens` (Huawei: 24 h).' },
  // --- console URL and tokens
  { key: 'publicUrl', type: 'url', default: null, env: `${E}PUBLIC_URL`, flag: 'public-url', help: 'Console base URL put in returned URLs (`<publicUrl>/vnc_auto.html?token=...`). Default: the proxy\'s own `http://host:port`.' },
  { key: 'publicUrlByAz', type: 'map', default: {}, fileOnly: true, help: 'Per availability zone console base URLs, e.g. `{"az1": "https://console-az1.example.com"}`; others use `publicUrl`.' },
  { key: 'consoleTokenTtlSeconds', type: 'int', default: 600, min: 5, max: 86400, env: `${E}CONSOLE_TOKEN_TTL_SECONDS`, help: 'Lifetime of an unused console token (Nova: 600 s).' },
  { key: 'consoleUrlTLength', type: 'string', default: '70', env: `${E}CONSOLE_URL_TLENGTH`, help: 'Opaque `tLength` parameter kept in console URLs for Huawei\'s URL shape.' },
  { key: 'auditRetentionDays', type: 'int', default: 90, min: 1, max: 36500, env: `${E}AUDIT_RETENTION_DAYS`, help: 'How long audit records (console URLs issued, sessions, refusals, operator actions) are kept; older ones are deleted every `tokenPurgeIntervalSeconds`.' },
  { key: 'tokenPurgeIntervalSeconds', type: 'int', default: 60, min: 1, max: 86400, env: `${E}TOKEN_PURGE_INTERVAL_SECONDS`, help: 'How often expired console and IAM tokens and signature-failure records are deleted.' },
  // --- proxy
  { key: 'proxyListen', type: 'listen', default: { host: '127.0.0.1', port: 6080 }, env: `${E}PROXY_LISTEN`, flag: 'proxy-listen', help: 'Console proxy `host:port` (page and WebSocket).' },
  { key: 'proxyTlsCert', type: 'string', default: null, env: `${E}PROXY_TLS_CERT`, help: 'PEM certificate (chain) file: the proxy serves HTTPS/WSS (TLS 1.2+, forward-secret AEAD suites only) with `Strict-Transport-Security`. Reloaded on SIGHUP.' },
  { key: 'proxyTlsKey', type: 'string', default: null, env: `${E}PROXY_TLS_KEY`, help: 'PEM private key file for `proxyTlsCert`.' },
  { key: 'proxyAllowedOrigins', type: 'list', default: null, env: `${E}PROXY_ALLOWED_ORIGINS`, help: 'Origins allowed to open console WebSockets (comma separated, e.g. `https://console.example.com`). Default: the origins of `publicUrl`, `publicUrlByAz` and the proxy\'s own address.' },
  { key: 'proxyAllowMissingOrigin', type: 'bool', default: true, env: `${E}PROXY_ALLOW_MISSING_ORIGIN`, help: 'Accept WebSockets without an `Origin` header (non-browser clients). Browsers always send one.' },
  { key: 'proxyHandshakeTimeoutSeconds', type: 'int', default: 15, min: 1, max: 300, env: `${E}PROXY_HANDSHAKE_TIMEOUT_SECONDS`, help: 'Time allowed for the whole RFB handshake (browser and backend) before the session is refused.' },
  { key: 'proxyBackendConnectTimeoutSeconds', type: 'int', default: 5, min: 1, max: 120, env: `${E}PROXY_BACKEND_CONNECT_TIMEOUT_SECONDS`, help: 'Time allowed to open the TCP connection to a server\'s VNC server.' },
  { key: 'proxyIdleTimeoutSeconds', type: 'int', default: 900, min: 0, max: 604800, env: `${E}PROXY_IDLE_TIMEOUT_SECONDS`, help: 'Close a session after this long without keyboard, mouse or clipboard input from the browser; 0 = never.' },
  { key: 'proxyMaxSessionSeconds', type: 'int', default: 28800, min: 0, max: 2592000, env: `${E}PROXY_MAX_SESSION_SECONDS`, help: 'Close a session after this long whatever happens; 0 = no limit.' },
  { key: 'proxyPingIntervalSeconds', type: 'int', default: 30, min: 1, max: 3600, env: `${E}PROXY_PING_INTERVAL_SECONDS`, help: 'WebSocket ping interval; a browser that misses a pong by the next ping is disconnected.' },
  { key: 'proxyMaxMessageBytes', type: 'int', default: 1048576, min: 1024, max: 67108864, env: `${E}PROXY_MAX_MESSAGE_BYTES`, help: 'Largest WebSocket message accepted from a browser (and largest clipboard text).' },
  { key: 'proxyMaxSessions', type: 'int', default: 10000, min: 1, max: 1000000, env: `${E}PROXY_MAX_SESSIONS`, help: 'Most concurrent console sessions on this proxy node (429 beyond). The proxy also refuses TCP connections beyond this plus 1,000 (page loads, pre-checks).' },
  { key: 'proxyMaxSessionsPerProject', type: 'int', default: 500, min: 1, max: 1000000, env: `${E}PROXY_MAX_SESSIONS_PER_PROJECT`, help: 'Most concurrent sessions of one project on this node.' },
  { key: 'proxyMaxSessionsPerServer', type: 'int', default: 10, min: 1, max: 10000, env: `${E}PROXY_MAX_SESSIONS_PER_SERVER`, help: 'Most concurrent sessions of one server on this node.' },
  { key: 'proxyFailedTokenLimitPerMinute', type: 'int', default: 30, min: 1, max: 1000000, env: `${E}PROXY_FAILED_TOKEN_LIMIT_PER_MINUTE`, help: 'Unknown console tokens one address may present per minute (WebSocket or pre-check) before it gets 429 for the rest of the minute.' },
  { key: 'proxyDrainSeconds', type: 'int', default: 10, min: 0, max: 3600, env: `${E}PROXY_DRAIN_SECONDS`, help: 'On SIGTERM: how long live sessions may go on before they are closed with a reason.' },
  // --- console targets (hypervisors)
  { key: 'backendTlsCa', type: 'string', default: null, env: `${E}BACKEND_TLS_CA`, help: 'PEM file of the CA(s) that sign hypervisors\' VNC certificates: targets set to use TLS (VeNCrypt X509None/X509Vnc) are verified against it and against their expected name. Reloaded on SIGHUP (new connections).' },
  { key: 'backendTlsCert', type: 'string', default: null, env: `${E}BACKEND_TLS_CERT`, help: 'PEM client certificate (chain) the proxy presents to hypervisors\' VNC servers over TLS (QEMU `verify-peer=on` requires one). Reloaded on SIGHUP.' },
  { key: 'backendTlsKey', type: 'string', default: null, env: `${E}BACKEND_TLS_KEY`, help: 'PEM private key file for `backendTlsCert`.' },
  { key: 'backendOneTimePasswordSeconds', type: 'int', default: 10, min: 1, max: 300, env: `${E}BACKEND_ONE_TIME_PASSWORD_SECONDS`, help: '`qemu-qmp` and `libvirt` targets: how long the random VNC password set for one session stays valid if the proxy cannot expire it at once after authenticating (Proxmox: 30 s).' },
  { key: 'backendManagementTimeoutSeconds', type: 'int', default: 5, min: 1, max: 120, env: `${E}BACKEND_MANAGEMENT_TIMEOUT_SECONDS`, help: '`qemu-qmp` and `libvirt` targets: time allowed for each QMP step (connect, greeting, command) and each `virsh` call.' },
  // --- screenshots and recordings
  { key: 'screenshotPerServerPerMinute', type: 'int', default: 6, min: 0, max: 100000, env: `${E}SCREENSHOT_PER_SERVER_PER_MINUTE`, help: 'Screenshots of one server per minute on this API node (`GET .../screenshot`); beyond, 429 `APIGW.0308`. 0 = unlimited.' },
  { key: 'screenshotTimeoutSeconds', type: 'int', default: 10, min: 1, max: 120, env: `${E}SCREENSHOT_TIMEOUT_SECONDS`, help: 'Time allowed for one screenshot: reaching and authenticating to the console, and receiving its whole screen.' },
  { key: 'recordingDir', type: 'string', default: null, env: `${E}RECORDING_DIR`, help: 'Directory of session recordings (one sealed file per recorded session). Default `<dataDir>/recordings`. In a fleet: a path every proxy and API node shares (NFS or similar), the same on each (docs/deploy.md).' },
  { key: 'recordingFlushMs', type: 'int', default: 1000, min: 50, max: 60000, env: `${E}RECORDING_FLUSH_MS`, help: 'How often a recorded session\'s buffered bytes are sealed and appended to its file (also when 1 MiB is buffered): a crash loses at most this much of the recording.' },
  { key: 'changePollIntervalMs', type: 'int', default: 250, min: 20, max: 10000, env: `${E}CHANGE_POLL_INTERVAL_MS`, help: 'How often a node reads the change feed (revocations, session kills) from the store.' },
  { key: 'cacheEntries', type: 'int', default: 10000, min: 0, max: 10000000, env: `${E}CACHE_ENTRIES`, help: 'Access keys (with their decrypted secret), users and servers each node keeps in memory, per kind, so that a signed call needs no store read for them; the change feed invalidates them (a revocation takes effect on every node within `cacheFeedLagMs`). 0 = no cache: every call reads the store.' },
  { key: 'cacheFeedLagMs', type: 'int', default: 750, min: 50, max: 60000, env: `${E}CACHE_FEED_LAG_MS`, help: 'The caches are used only while this node read the change feed to its end within this many milliseconds (and, on PostgreSQL, its LISTEN connection is up); otherwise calls read the store. The bound within which a key deactivated, a user disabled or a server stopped on one node is refused by every other. The caches\' follower reads the feed at least three times within it.' },
  { key: 'changeRetentionSeconds', type: 'int', default: 3600, min: 1, max: 2592000, env: `${E}CHANGE_RETENTION_SECONDS`, help: 'How long changes (revocations, session kills) stay in the change feed. A proxy node cut off from the store for longer re-checks every live session against the inventory when it is back.' },
  { key: 'sessionHeartbeatSeconds', type: 'int', default: 15, min: 1, max: 3600, env: `${E}SESSION_HEARTBEAT_SECONDS`, help: 'How often a proxy node writes its live sessions to the store (what `sessions list` shows): rows lost in a database outage come back, rows of ended sessions go.' },
  { key: 'sessionStaleSeconds', type: 'int', default: 60, min: 2, max: 86400, env: `${E}SESSION_STALE_SECONDS`, help: 'A session row not refreshed for this long belongs to a node that is gone or cut off from the store: `sessions list` leaves it out and the purge deletes it. At least twice `sessionHeartbeatSeconds`; set it alike on every node and for the CLI.' },
];

const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));

export function optionDef(key: string): OptionDef | undefined {
  return BY_KEY.get(key);
}
