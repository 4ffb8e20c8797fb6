/**
 * The configuration flags every bench node of ours runs with: the limits that would refuse the
 * load raised (rate limits off, session caps high, no drain wait on exit); the rest is default.
 */
export const BENCH_LIMITS = {
  apiListen: '127.0.0.1:0',
  proxyListen: '127.0.0.1:0',
  apiRateLimitPerCredential: 0,
  apiRateLimitPerAddress: 0,
  proxyMaxSessions: 1_000_000,
  proxyMaxSessionsPerProject: 1_000_000,
  proxyMaxSessionsPerServer: 10_000,
  proxyFailedTokenLimitPerMinute: 1_000_000,
  proxyDrainSeconds: 0,
} as const;
