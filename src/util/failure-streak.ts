/**
 * Logging for a loop that retries (change feed, session heartbeat, purge): during an outage it
 * fails every few hundred milliseconds, and a line (with a stack) per failure buries everything
 * else. The first failure of a streak is logged at warn with its error, then one line with the
 * count every `summaryMs` while the streak lasts, and the recovery with the total.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';

export class FailureStreak {
  private failures = 0;
  private since = 0;
  private lastSummary = 0;

  constructor(
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    /** What fails, for the messages: e.g. "reading the change feed". */
    private readonly what: string,
    private readonly clock: Clock,
    private readonly summaryMs = 60_000,
  ) {}

  /** Whether the last attempt failed. */
  get failing(): boolean {
    return this.failures > 0;
  }

  failed(err: unknown): void {
    const now = this.clock.now();
    this.failures++;
    if (this.failures === 1) {
      this.since = now;
      this.lastSummary = now;
      this.log.warn({ err }, `${this.what} failed (further failures are counted until it works again)`);
    } else if (now - this.lastSummary >= this.summaryMs) {
      this.lastSummary = now;
      this.log.warn({ failures: this.failures, failingForMs: now - this.since, error: messageOf(err) }, `${this.what} still failing`);
    }
  }

  succeeded(): void {
    if (this.failures === 0) return;
    this.log.info({ failures: this.failures, failedForMs: this.clock.now() - this.since }, `${this.what} works again`);
    this.failures = 0;
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
