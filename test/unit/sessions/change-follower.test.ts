/**
 * The node caches and the change-feed follower that invalidates them: a cached row is served only
 * while the feed is followed within the bound, an invalidation beats a fill in flight, and losing
 * the feed (reads failing, the push connection dropped) sends every lookup to the store until a
 * complete read emptied the caches.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import { ChangeFollower, type Invalidation } from '../../../src/sessions/change-follower.js';
import type { ChangeEvent, ChangeFeedStore } from '../../../src/sessions/types.js';
import { NodeCache } from '../../../src/util/node-cache.js';

const log = createLogger({ level: 'silent', format: 'json' });

/** An in-memory change feed whose reads can be made to fail, with an optional push connection. */
class TestFeed implements ChangeFeedStore {
  rows: ChangeEvent[] = [];
  failing = false;
  push: { onAppend: () => void; onLost?: () => void } | null = null;
  constructor(private readonly withPush: boolean) {
    // No push (as SQLite): the follower must see no watch at all.
    if (!withPush) (this as { watch?: unknown }).watch = undefined;
  }
  async appendChange(e: Omit<ChangeEvent, 'id'>): Promise<number> {
    const id = (this.rows.at(-1)?.id ?? 0) + 1;
    this.rows.push({ ...e, id });
    this.push?.onAppend();
    return id;
  }
  async changesSince(afterId: number, limit: number): Promise<ChangeEvent[]> {
    if (this.failing) throw new Error('store unavailable');
    return this.rows.filter((r) => r.id > afterId).slice(0, limit);
  }
  async latestChangeId(): Promise<number> {
    if (this.failing) throw new Error('store unavailable');
    return this.rows.at(-1)?.id ?? 0;
  }
  async purgeChanges(): Promise<number> {
    return 0;
  }
  watch(onAppend: () => void, onLost?: () => void): () => void {
    this.push = { onAppend, ...(onLost ? { onLost } : {}) };
    // Connected at once, as the listener reports after its LISTEN.
    queueMicrotask(onAppend);
    return () => (this.push = null);
  }
}

const revoke = (credential: string): Omit<ChangeEvent, 'id'> => ({ at: Date.now(), kind: 'credential-revoked', serverId: null, sessionId: null, credential });

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
}

test('a cache serves only trusted, fresh entries; `keep` decides what is filled; eviction by age of fill', async () => {
  let trusted = true;
  const c = new NodeCache<{ v: number; ok: boolean }>({ maxEntries: 2, maxAgeMs: 60_000, trusted: () => trusted });
  let loads = 0;
  const load = (v: number, ok = true) => async () => (loads++, { v, ok });
  assert.equal((await c.get('a', load(1)))?.v, 1);
  assert.equal((await c.get('a', load(2)))?.v, 1, 'served from the cache');
  assert.equal(loads, 1);
  // Not kept: read every time.
  await c.get('b', load(3, false), (x) => x.ok);
  await c.get('b', load(4, false), (x) => x.ok);
  assert.equal(loads, 3);
  // Untrusted: the store every time, nothing filled.
  trusted = false;
  assert.equal(c.peek('a'), undefined);
  assert.equal((await c.get('a', load(5)))?.v, 5);
  await c.get('z', load(6));
  trusted = true;
  assert.equal(c.peek('z'), undefined, 'nothing was filled while untrusted');
  // Two entries at most: the oldest fill goes.
  await c.get('c', load(7));
  await c.get('d', load(8));
  assert.equal(c.size, 2);
  assert.equal(c.peek('a'), undefined);
});

test('an invalidation during a fill keeps the fill out of the cache', async () => {
  const c = new NodeCache<string>({ maxEntries: 10, maxAgeMs: 60_000, trusted: () => true });
  let release!: () => void;
  const pending = c.get('k', () => new Promise<string>((r) => (release = () => r('old'))));
  // The row changes and its invalidation arrives while the store read is in flight.
  c.delete('k');
  release();
  assert.equal(await pending, 'old', 'the caller gets what it read');
  assert.equal(c.peek('k'), undefined, 'but the cache does not keep it');
  assert.equal(await c.get('k', async () => 'new'), 'new');
  assert.equal(c.peek('k'), 'new');
});

test('entries expire after maxAgeMs whatever the feed says', async () => {
  let now = 0;
  const c = new NodeCache<string>({ maxEntries: 10, maxAgeMs: 1000, trusted: () => true, now: () => now });
  await c.get('k', async () => 'v');
  now = 999;
  assert.equal(c.peek('k'), 'v');
  now = 1001;
  assert.equal(c.peek('k'), undefined);
});

for (const withPush of [false, true]) {
  test(`follower (${withPush ? 'push and polling, as PostgreSQL' : 'polling, as SQLite'}): changes invalidate; a feed that cannot be read is not trusted beyond the bound; trust comes back with empty caches`, async (t) => {
    const feed = new TestFeed(withPush);
    const f = new ChangeFollower(feed, { pollMs: 20, maxLagMs: 150 }, systemClock, log);
    t.after(() => f.stop());
    const seen: Invalidation[] = [];
    f.onInvalidate((i) => seen.push(i));
    assert.equal(f.trusted(), false, 'not before it started');
    await f.start();
    await until(() => f.trusted());
    seen.length = 0;
    await feed.appendChange(revoke('ak:AAA'));
    await until(() => seen.some((i) => i !== 'all' && i.credential === 'ak:AAA'));

    // The store cannot be read: trust ends within maxLagMs.
    feed.failing = true;
    await until(() => !f.trusted(), 5000);
    // Changes made meanwhile are read when the store is back, after a full invalidation.
    await feed.appendChange(revoke('user:U1'));
    seen.length = 0;
    feed.failing = false;
    await until(() => f.trusted());
    assert.equal(seen[0], 'all', 'the caches are emptied before they are trusted again');
    assert.ok(seen.some((i) => i !== 'all' && i.credential === 'user:U1'));
  });
}

test('follower: the push connection lost means untrusted at once, until it is back and the caches were emptied', async (t) => {
  const feed = new TestFeed(true);
  const f = new ChangeFollower(feed, { pollMs: 20, maxLagMs: 500 }, systemClock, log);
  t.after(() => f.stop());
  const seen: Invalidation[] = [];
  f.onInvalidate((i) => seen.push(i));
  await f.start();
  await until(() => f.trusted());
  const push = feed.push!;
  seen.length = 0;
  push.onLost?.();
  assert.equal(f.trusted(), false, 'no longer trusted, though reads still work');
  await sleep(60);
  assert.equal(f.trusted(), false, 'polling alone does not bring trust back while the push is down');
  assert.equal(seen[0], 'all', 'the caches were emptied after the loss');
  push.onAppend();
  await until(() => f.trusted());
});

test('follower: a gap in the feed (changes purged before they were read) empties the caches', async (t) => {
  const feed = new TestFeed(false);
  const f = new ChangeFollower(feed, { pollMs: 20, maxLagMs: 500 }, systemClock, log);
  t.after(() => f.stop());
  const seen: Invalidation[] = [];
  f.onInvalidate((i) => seen.push(i));
  await f.start();
  await until(() => f.trusted());
  seen.length = 0;
  // Ids 1 and 2 were appended and purged before this node read them; 3 is the newest.
  feed.rows.push({ ...revoke('ak:X'), id: 3 });
  await until(() => seen.length >= 2);
  assert.equal(seen[0], 'all');
});

test('follower: its subscribers get every change read, once, in order; a gap calls them back before the changes after it, and a failing gap handler holds those back until it succeeds', async (t) => {
  const feed = new TestFeed(true);
  const f = new ChangeFollower(feed, { pollMs: 20, maxLagMs: 500 }, systemClock, log);
  t.after(() => f.stop());
  const events: string[] = [];
  f.onInvalidate((i) => events.push(i === 'all' ? 'all' : `invalidate ${i.credential ?? ''}`));
  f.onChange((ch) => events.push(`change ${ch.id}`));
  let gapFails = 1;
  f.onGap(async () => {
    events.push('gap');
    if (gapFails-- > 0) throw new Error('store unavailable for the re-check');
  });
  await f.start();
  await until(() => f.trusted());
  events.length = 0;
  await feed.appendChange(revoke('ak:A'));
  await feed.appendChange(revoke('ak:B'));
  await until(() => events.includes('change 2'));
  assert.deepEqual(events, ['invalidate ak:A', 'change 1', 'invalidate ak:B', 'change 2'], 'the cache drops a change before the proxy acts on it');
  f.applyLocal({ kind: 'credential-revoked', serverId: null, credential: 'ak:L' });
  assert.deepEqual(events.slice(4), ['invalidate ak:L'], 'a local change reaches the caches only');
  events.length = 0;
  // Ids 3 and 4 purged before this node read them.
  feed.rows.push({ ...revoke('ak:C'), id: 5 });
  feed.push?.onAppend();
  await until(() => events.includes('change 5'));
  assert.deepEqual(events.filter((e) => e !== 'all'), ['gap', 'gap', 'invalidate ak:C', 'change 5'], 'the failed re-check is tried again before change 5 is delivered');
  assert.equal(events[0], 'all', 'the caches are emptied at the gap');
  assert.equal(events.filter((e) => e === 'change 5').length, 1);
});

test('follower: a node that lags behind the feed (its reads stall) distrusts its caches, whatever its subscribers do', async (t) => {
  const feed = new TestFeed(false);
  let stall: (() => void) | null = null;
  const read = feed.changesSince.bind(feed);
  feed.changesSince = async (afterId, limit) => {
    if (stall === null) return read(afterId, limit);
    await new Promise<void>((r) => (stall = r));
    return read(afterId, limit);
  };
  const f = new ChangeFollower(feed, { pollMs: 20, maxLagMs: 100 }, systemClock, log);
  t.after(() => f.stop());
  const changes: number[] = [];
  f.onChange((ch) => changes.push(ch.id));
  await f.start();
  await until(() => f.trusted());
  stall = () => undefined;
  await until(() => !f.trusted(), 5000);
  await feed.appendChange(revoke('ak:S'));
  (stall as () => void)();
  stall = null;
  await until(() => f.trusted());
  assert.deepEqual(changes, [1], 'the change appended while it lagged is delivered once it caught up');
});
