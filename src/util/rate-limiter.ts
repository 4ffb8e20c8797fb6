/**
 * Fixed-window request counters per key (credential, address), bounded in memory: the oldest
 * windows are dropped first when `maxKeys` is reached, so a flood of distinct keys cannot grow it.
 */
import type { Clock } from '../clock.js';

export interface RateDecision {
  readonly allowed: boolean;
  /** Seconds until the window resets (for Retry-After). */
  readonly retryAfterSeconds: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    /** Allowed events per window; 0 = unlimited. */
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** Counts one event for `key` and says whether it is within the limit. */
  hit(key: string, weight = 1): RateDecision {
    if (this.limit === 0) return { allowed: true, retryAfterSeconds: 0 };
    const now = this.clock.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      if (w) this.windows.delete(key);
      w = { start: now, count: 0 };
      if (this.windows.size >= this.maxKeys) this.evict(now);
      this.windows.set(key, w);
    }
    w.count += weight;
    const retryAfterSeconds = Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
    return { allowed: w.count <= this.limit, retryAfterSeconds };
  }

  /** Whether `key` is over the limit now, without counting. */
  blocked(key: string): boolean {
    return this.blockedForSeconds(key) > 0;
  }

  /** Seconds until `key`'s window ends when it is over the limit now (for Retry-After); 0 when it is not. */
  blockedForSeconds(key: string): number {
    if (this.limit === 0) return 0;
    const w = this.windows.get(key);
    const now = this.clock.now();
    if (!w || now - w.start >= this.windowMs || w.count < this.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000));
  }

  private evict(now: number): void {
    for (const [k, w] of this.windows) {
      if (now - w.start >= this.windowMs) this.windows.delete(k);
    }
    // Still full: drop the oldest insertions (Map keeps insertion order).
    const excess = this.windows.size - Math.floor(this.maxKeys * 0.9);
    if (excess > 0) {
      let i = 0;
      for (const k of this.windows.keys()) {
        if (i++ >= excess) break;
        this.windows.delete(k);
      }
    }
  }
}
