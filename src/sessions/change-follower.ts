/**
 * Follows the change feed for this node: its caches (keys, users, servers: see util/node-cache.ts),
 * whether they may be trusted now, and whoever else acts on changes (the console proxy closes the
 * sessions a change ends): one read of the feed per change per node.
 *
 * NOTE: the bound. The follower reads the feed every `pollMs` and at once when the store pushes
 * (PostgreSQL LISTEN/NOTIFY). After a read that started at time s returns (and reached the end of
 * the feed), every change committed before s has been applied to the caches. The caches are
 * trusted only while the last such read started at most `maxLagMs` ago and, when the store pushes,
 * while its listening connection is up. So a change committed at time c is in force on this node
 * by c + maxLagMs at the latest: served from a cache that saw it, or from the store. When trust is
 * lost (the store cannot be read, the listener dropped, the event loop stalled), lookups go to the
 * store, and the caches are emptied before they are trusted again.
 */
import type { Logger } from '../log.js';
import { FailureStreak } from '../util/failure-streak.js';
import type { Clock } from '../clock.js';
import type { ChangeEvent, ChangeFeedStore } from './types.js';

export interface ChangeFollowerOptions {
  /** How often the feed is read without a push. */
  readonly pollMs: number;
  /** Longest time since the start of the last complete read for the caches to be trusted. */
  readonly maxLagMs: number;
}

/** What to invalidate: one change, or everything (`all`: a gap in the feed, trust regained, a key ring reload). */
export type Invalidation = Pick<ChangeEvent, 'kind' | 'serverId' | 'credential'> | 'all';

const BATCH = 500;

export class ChangeFollower {
  private lastId = 0;
  /** performance.now() at the start of the last read that reached the end of the feed. */
  private goodReadAt = -Infinity;
  /** The store's push connection is up (true when the store has none). */
  private pushUp: boolean;
  private readonly hasPush: boolean;
  /** The caches were not trusted at some point since they were last emptied. */
  private mustClear = true;
  private following = false;
  private followAgain = false;
  private started = false;
  private timer: NodeJS.Timeout | null = null;
  private unwatch: (() => void) | null = null;
  private readonly sinks: Array<(i: Invalidation) => void> = [];
  private readonly listeners: Array<(ch: ChangeEvent) => void> = [];
  private readonly gapHandlers: Array<() => Promise<void>> = [];
  private readonly streak: FailureStreak;

  constructor(
    private readonly changes: ChangeFeedStore,
    private readonly opts: ChangeFollowerOptions,
    clock: Clock,
    private readonly log: Logger,
  ) {
    this.hasPush = typeof changes.watch === 'function';
    this.pushUp = !this.hasPush;
    this.streak = new FailureStreak(log, 'following the change feed for the node caches', clock);
  }

  /** Calls `sink` for every change read and for every full invalidation. */
  onInvalidate(sink: (i: Invalidation) => void): void {
    this.sinks.push(sink);
  }

  /**
   * Calls `listener` for every change read from the feed, in order, after the caches dropped what
   * it makes stale (not for changes applied locally with applyLocal).
   */
  onChange(listener: (ch: ChangeEvent) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Calls `handler` when changes were purged before this node read them (what they said is lost),
   * after the caches were emptied and before the changes read after the gap are delivered. While it
   * fails, the read fails and is tried again (the gap is found again).
   */
  onGap(handler: () => Promise<void>): void {
    this.gapHandlers.push(handler);
  }

  /** Whether cached rows may be served now (see the note at the top). */
  trusted(): boolean {
    if (!this.started || !this.pushUp || this.mustClear) return false;
    if (performance.now() - this.goodReadAt <= this.opts.maxLagMs) return true;
    this.distrust();
    return false;
  }

  /** Starts following from the feed's newest change. Resolves once the first read is done (or failed). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.timer = setInterval(() => void this.follow(), this.opts.pollMs);
    this.timer.unref();
    this.unwatch = this.changes.watch?.(
      () => {
        this.pushUp = true;
        void this.follow();
      },
      () => {
        this.pushUp = false;
        this.distrust();
      },
    ) ?? null;
    const t0 = performance.now();
    try {
      this.lastId = await this.changes.latestChangeId();
      this.mustClear = false;
      this.invalidate('all');
      this.read(t0);
    } catch (e) {
      this.streak.failed(e);
    }
  }

  stop(): void {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unwatch?.();
    this.unwatch = null;
    this.invalidate('all');
  }

  /** Applies a change this process appended, at once (other nodes read it from the feed). */
  applyLocal(i: Invalidation): void {
    this.invalidate(i);
  }

  private distrust(): void {
    this.mustClear = true;
  }

  /** A complete read that started at `t0`: the caches are good up to then. */
  private read(t0: number): void {
    this.goodReadAt = t0;
  }

  private invalidate(i: Invalidation): void {
    for (const sink of this.sinks) {
      try {
        sink(i);
      } catch (e) {
        this.log.warn({ err: e }, 'cache invalidation failed');
      }
    }
  }

  private deliver(ch: ChangeEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(ch);
      } catch (e) {
        this.log.warn({ err: e, change: ch.id }, 'applying a change failed');
      }
    }
  }

  private async follow(): Promise<void> {
    if (!this.started) return;
    if (this.following) {
      this.followAgain = true;
      return;
    }
    this.following = true;
    try {
      for (this.followAgain = true; this.followAgain; ) {
        this.followAgain = false;
        const t0 = performance.now();
        const batch = await this.changes.changesSince(this.lastId, BATCH);
        if (this.mustClear) {
          // Trust comes back only with empty caches: what was missed while untrusted goes with them.
          this.mustClear = false;
          this.invalidate('all');
        }
        // The newest change is never purged: a first id past the next one means changes were
        // purged before this node read them, so what they said is unknown: everything goes.
        if (batch.length > 0 && batch[0]!.id > this.lastId + 1) {
          this.invalidate('all');
          for (const gap of this.gapHandlers) await gap();
        }
        for (const ch of batch) {
          this.lastId = ch.id;
          this.invalidate(ch);
          this.deliver(ch);
        }
        if (batch.length === BATCH) this.followAgain = true;
        else this.read(t0);
      }
      this.streak.succeeded();
    } catch (e) {
      this.streak.failed(e);
    } finally {
      this.following = false;
    }
  }
}
