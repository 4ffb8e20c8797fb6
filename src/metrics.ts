/**
 * Prometheus metrics, one registry per app (no global state). Labels never carry tokens, ids of
 * credentials or addresses: only routes, statuses, outcomes and reasons from fixed sets.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** How often the event-loop lag histogram (`ecs_console_nodejs_eventloop_lag_*`) takes a sample. */
export const EVENT_LOOP_SAMPLE_MS = 100;

export class Metrics {
  readonly registry = new Registry();
  readonly sessionsActive: Gauge;
  readonly sessions: Counter<'outcome' | 'reason'>;
  readonly bytes: Counter<'direction'>;
  readonly handshakeSeconds: Histogram;
  readonly apiRequests: Counter<'route' | 'method' | 'status'>;
  readonly apiSeconds: Histogram<'route' | 'method'>;
  readonly serialPortsHeld: Gauge;
  readonly serialOutputBytes: Counter;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.sessionsActive = new Gauge({ name: 'ecs_console_sessions_active', help: 'Console sessions relaying now on this node', registers });
    this.sessions = new Counter({
      name: 'ecs_console_sessions_total', help: 'Console connection attempts by outcome (connected, rejected, closed) and reason',
      labelNames: ['outcome', 'reason'], registers,
    });
    this.bytes = new Counter({ name: 'ecs_console_bytes_total', help: 'Bytes relayed, by direction', labelNames: ['direction'], registers });
    this.handshakeSeconds = new Histogram({
      name: 'ecs_console_handshake_seconds', help: 'From WebSocket upgrade to ServerInit sent to the browser',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    this.apiRequests = new Counter({ name: 'ecs_console_api_requests_total', help: 'API requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.apiSeconds = new Histogram({
      name: 'ecs_console_api_request_seconds', help: 'API request latency by route and method', labelNames: ['route', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers,
    });
    this.serialPortsHeld = new Gauge({ name: 'ecs_console_serial_ports_held', help: 'Serial ports this node holds (connected to, keeping their output)', registers });
    this.serialOutputBytes = new Counter({ name: 'ecs_console_serial_output_bytes_total', help: 'Bytes read from serial ports', registers });
    // The event-loop lag histogram samples every 100 ms (prom-client's default, 10 ms, is a timer
    // that wakes the relay's thread 100 times a second, idle or not; the lag metrics keep their
    // meaning with 10 samples a second between scrapes).
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'ecs_console_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  /**
   * The node caches' lookups (answered from the cache, or read from the store) and sizes, read at
   * each scrape from `stats`; `trusted` is 1 while the caches may be served (change feed followed).
   */
  watchCaches(stats: () => Record<'keys' | 'users' | 'servers', { hits: number; misses: number; size: number }>, trusted: () => boolean): void {
    const registers = [this.registry];
    new Counter({
      name: 'ecs_console_cache_lookups_total', help: 'Lookups of the node caches (keys, users, servers): hit = served from memory, miss = read from the store',
      labelNames: ['cache', 'result'], registers,
      collect() {
        this.reset();
        for (const [cache, s] of Object.entries(stats())) {
          this.inc({ cache, result: 'hit' }, s.hits);
          this.inc({ cache, result: 'miss' }, s.misses);
        }
      },
    });
    new Gauge({
      name: 'ecs_console_cache_entries', help: 'Entries in the node caches', labelNames: ['cache'], registers,
      collect() {
        for (const [cache, s] of Object.entries(stats())) this.set({ cache }, s.size);
      },
    });
    new Gauge({
      name: 'ecs_console_cache_trusted', help: '1 while the node caches may be served (the change feed is followed within cacheFeedLagMs), else 0', registers,
      collect() {
        this.set(trusted() ? 1 : 0);
      },
    });
  }

  observeApi(route: string, method: string, status: number, seconds: number): void {
    this.apiRequests.inc({ route, method, status: String(status) });
    this.apiSeconds.observe({ route, method }, seconds);
  }
}
