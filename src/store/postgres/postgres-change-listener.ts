/**
 * Push for the change feed: one dedicated connection LISTENs on a channel that appendChange
 * notifies in the same statement as its INSERT. The connection is re-dialled with backoff whenever
 * it drops (server restart, backend terminated, network gone), and subscribers are called once
 * after every (re)connection, because notifications sent while not listening are lost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientConfig, type Notification } from 'pg';
import { describePgError, endClient, type StoreLog } from './postgres-database.js';

/** Timing of the listener's connection. */
export interface ChangeListenerTiming {
  /** A `SELECT 1` on the listening connection this often finds a silently dead one. */
  readonly healthCheckMs: number;
  /** Reconnection backoff: first wait, doubled after each failure up to the longest. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Longest wait for a connection to end when stopping. */
  readonly endWaitMs: number;
}

/** LISTEN/NOTIFY subscriber fan-out over one connection that stays up as long as anyone listens. */
export class PostgresChangeListener {
  private readonly subscribers = new Set<() => void>();
  private readonly lostSubscribers = new Set<() => void>();
  private loop: Promise<void> | null = null;
  private stop: AbortController | null = null;
  private closed = false;

  constructor(
    private readonly config: ClientConfig,
    private readonly channel: string,
    private readonly timing: ChangeListenerTiming,
    private readonly log: StoreLog,
  ) {
    // The channel is spliced into LISTEN (it cannot be a parameter): only a plain identifier.
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new RangeError('change channel must be a lower-case SQL identifier');
  }

  /**
   * Calls `onAppend` after each notification on the channel and once after each (re)connection,
   * and `onLost` whenever a connection that listened ends (notifications are missed until the next
   * `onAppend`). Returns a function that unsubscribes; the connection closes when the last
   * subscriber leaves.
   */
  subscribe(onAppend: () => void, onLost?: () => void): () => void {
    if (this.closed) return () => undefined;
    // A wrapper per call: subscribing the same function twice needs two unsubscribes.
    const entry = (): void => onAppend();
    const lost = onLost ? (): void => onLost() : null;
    this.subscribers.add(entry);
    if (lost) this.lostSubscribers.add(lost);
    this.ensureRunning();
    return () => {
      this.subscribers.delete(entry);
      if (lost) this.lostSubscribers.delete(lost);
      if (this.subscribers.size === 0) this.stop?.abort();
    };
  }

  /** Drops every subscriber and closes the connection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    this.lostSubscribers.clear();
    this.stop?.abort();
    await this.loop;
  }

  private ensureRunning(): void {
    if (this.loop) return;
    const stop = new AbortController();
    this.stop = stop;
    this.loop = this.run(stop.signal)
      .catch((e: unknown) => this.log.error({ pgError: describePgError(e) }, 'change listener stopped unexpectedly'))
      .finally(() => {
        this.loop = null;
        this.stop = null;
        // Subscribed again while the previous loop was winding down.
        if (!this.closed && this.subscribers.size > 0) this.ensureRunning();
      });
  }

  private notify(list: ReadonlySet<() => void> = this.subscribers): void {
    for (const fn of list) {
      try {
        fn();
      } catch (e) {
        // A throwing subscriber must not break the driver's message loop or the other subscribers.
        this.log.warn({ err: e }, 'change feed subscriber failed');
      }
    }
  }

  /** Connect, LISTEN, wait for the connection to drop, back off, again; until stopped. */
  private async run(signal: AbortSignal): Promise<void> {
    let delay = this.timing.retryMinMs;
    let everConnected = false;
    while (!signal.aborted) {
      const { connected, reason } = await this.listenOnce(signal);
      if (signal.aborted) break;
      if (connected) delay = this.timing.retryMinMs;
      everConnected ||= connected;
      // Jitter: listeners of every node do not all dial a restarted server in the same instant.
      const wait = Math.round(delay / 2 + (Math.random() * delay) / 2);
      this.log.warn(
        { pgError: describePgError(reason), retryInMs: wait },
        connected ? 'change listener connection lost; reconnecting' : everConnected ? 'change listener cannot reconnect yet' : 'change listener cannot connect yet',
      );
      await sleep(wait, undefined, { signal }).catch(() => undefined);
      delay = Math.min(delay * 2, this.timing.retryMaxMs);
    }
  }

  /** One connection's life. Resolves when it ends: `reason` is why (null when stopped). */
  private async listenOnce(signal: AbortSignal): Promise<{ connected: boolean; reason: unknown }> {
    const client = new Client(this.config);
    let ended!: (reason: unknown) => void;
    const done = new Promise<unknown>((resolve) => (ended = resolve));
    // NOTE: attached for the client's whole life: pg emits 'error' when an idle connection drops,
    // and an 'error' event without a listener would crash the process.
    client.on('error', (e) => ended(e));
    client.on('end', () => ended(new Error('connection ended')));
    client.on('notification', (n: Notification) => {
      if (n.channel === this.channel) this.notify();
    });
    const onAbort = (): void => ended(null);
    signal.addEventListener('abort', onAbort, { once: true });
    let health: NodeJS.Timeout | undefined;
    let connected = false;
    let over = false;
    try {
      const ready = client.connect().then(() => client.query(`LISTEN ${this.channel}`)).then(
        () => true,
        (e: unknown) => (ended(e), false),
      );
      connected = await Promise.race([ready, done.then(() => false)]);
      if (connected) {
        this.log.info({ channel: this.channel }, 'change listener connected');
        // Appends made while not listening sent no notification we could receive.
        this.notify();
        // One check at a time: the next is scheduled when the previous answered (or failed, ending
        // the connection), never stacked behind a check a silent network holds up.
        const check = (): void => {
          if (over) return;
          health = setTimeout(() => {
            client.query('SELECT 1').then(check, (e: unknown) => ended(e));
          }, this.timing.healthCheckMs);
          health.unref();
        };
        check();
      }
      return { connected, reason: await done };
    } finally {
      over = true;
      clearTimeout(health);
      // From now on notifications are lost: followers must not rely on them.
      if (connected) this.notify(this.lostSubscribers);
      signal.removeEventListener('abort', onAbort);
      await endClient(client, this.timing.endWaitMs);
    }
  }
}
