/**
 * A per-node cache of store rows that the change feed invalidates (see sessions/change-follower.ts).
 *
 * NOTE: a cached row is only served while `trusted()` says the change feed is followed closely
 * enough (the follower read it within its bound, and its push connection, if any, is up). When it
 * is not, every lookup goes to the store and nothing is filled, so a lost feed can never make a
 * revoked key, a disabled user or a stopped server look good beyond the bound.
 *
 * Fills race with invalidations: a lookup that read the store before an invalidation and returns
 * after it would put the old row back. Every invalidation bumps an epoch, and a fill is kept only
 * when the epoch did not move while its store read ran.
 */

export interface NodeCacheOptions {
  /** Most entries kept (the oldest filled go first); 0 turns the cache off. */
  readonly maxEntries: number;
  /** An entry is not served after this long, whatever the feed says (a bound on a missed invalidation). */
  readonly maxAgeMs: number;
  /** Whether cached rows may be served (and filled) now. */
  readonly trusted: () => boolean;
  /** Monotonic milliseconds (performance.now by default). */
  readonly now?: () => number;
}

interface Entry<V> {
  readonly value: V;
  readonly at: number;
}

export class NodeCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private epochNo = 0;
  private readonly now: () => number;
  /** Lookups answered from the cache, and those that went to the store. */
  hits = 0;
  misses = 0;

  constructor(private readonly opts: NodeCacheOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** The cached value of `key` when it may be served now, else undefined. */
  peek(key: string): V | undefined {
    if (this.opts.maxEntries === 0) return undefined;
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (this.now() - e.at > this.opts.maxAgeMs) {
      this.map.delete(key);
      return undefined;
    }
    return this.opts.trusted() ? e.value : undefined;
  }

  /**
   * The value of `key`: the cached one when it may be served, else `load()`'s, kept when `keep`
   * says so (e.g. only active keys: a row that refuses is never served from here) and no
   * invalidation happened meanwhile.
   */
  async get(key: string, load: () => Promise<V | null>, keep: (v: V) => boolean = () => true): Promise<V | null> {
    const hit = this.peek(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const epoch = this.epochNo;
    const fillable = this.opts.maxEntries > 0 && this.opts.trusted();
    const v = await load();
    if (v !== null && fillable && epoch === this.epochNo && keep(v) && this.opts.trusted()) this.set(key, v);
    return v;
  }

  private set(key: string, value: V): void {
    this.map.delete(key);
    if (this.map.size >= this.opts.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { value, at: this.now() });
  }

  /** Drops `key` (and any fill in flight). */
  delete(key: string): void {
    this.epochNo++;
    this.map.delete(key);
  }

  /** Drops the entries `drop` selects (and any fill in flight). */
  deleteWhere(drop: (value: V, key: string) => boolean): void {
    this.epochNo++;
    for (const [k, e] of this.map) if (drop(e.value, k)) this.map.delete(k);
  }

  /** Drops everything (and any fill in flight). */
  clear(): void {
    this.epochNo++;
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
