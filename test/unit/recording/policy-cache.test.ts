/**
 * The recording policies a session's setup asks for come from the node's cache; a policy set or
 * removed on this node applies at once, one set on another node once this node reads the change
 * feed (as every node cache: within cacheFeedLagMs).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PolicyCachingRecordingStore } from '../../../src/recording/policy-cache.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;

before(async () => {
  // The longest lag the caches allow: a slow machine does not make them untrusted mid-test.
  stack = await startStack({ options: { cacheFeedLagMs: '60000' } });
  s = await seed(stack.app);
});
after(() => stack.stop());

async function until(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`not reached: ${what}`);
}

test('recording policies: read once per server from the store, then from the cache; changed here: at once; changed on another node: once the feed is read', async () => {
  const rs = stack.app.services.recordings;
  const cached = rs.store as PolicyCachingRecordingStore;
  const before = cached.cacheStats();
  assert.equal(await rs.policyFor(s.projectId, s.active.id), null);
  assert.equal(await rs.policyFor(s.projectId, s.active.id), null);
  assert.deepEqual([cached.cacheStats().misses - before.misses, cached.cacheStats().hits - before.hits], [1, 1], '"no policy" is cached too');

  // Set on this node: the next session is recorded.
  await rs.setPolicy({ scope: 'project', scopeId: s.projectId, enabled: true });
  assert.equal((await rs.policyFor(s.projectId, s.active.id))?.enabled, true);
  // Removed on this node: at once too.
  await rs.removePolicy('project', s.projectId);
  assert.equal(await rs.policyFor(s.projectId, s.active.id), null);
  assert.equal(await rs.policyFor(s.projectId, s.active.id), null);

  // Set on another node: its store write and its change on the feed, not this node's cache.
  const raw = stack.app.services.stores.recordings;
  const now = Date.now();
  await raw.putRecordingPolicy({ scope: 'server', scopeId: s.active.id, projectId: s.projectId, enabled: true, keystrokes: true, retentionDays: 1, quotaBytes: null, updatedAt: now, updatedBy: null });
  assert.equal(await rs.policyFor(s.projectId, s.active.id), null, 'this node has not read the change yet');
  await stack.app.services.stores.changes.appendChange({ at: now, kind: 'record-changed', serverId: null, sessionId: null, credential: `recording:server:${s.active.id}` });
  await until('the change read', async () => (await rs.policyFor(s.projectId, s.active.id))?.keystrokes === true);
  // Other servers' entries stay.
  const other = cached.cacheStats();
  await rs.policyFor(s.projectId, s.shutoff.id);
  await rs.policyFor(s.projectId, s.shutoff.id);
  assert.equal(cached.cacheStats().hits - other.hits, 1);
});
