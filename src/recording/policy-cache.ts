/**
 * The recording policies that apply to a server, cached per node (util/node-cache.ts) for the
 * console proxy, which asks for them at every session's setup: a RecordingStore whose policy reads
 * come from the cache and whose policy writes tell every node through the change feed
 * (`record-changed`, credential `recording:project:<id>` or `recording:server:<id>`).
 *
 * NOTE: a policy set or removed on one node applies to sessions set up on the node that made the
 * change at once, and on every other node within `cacheFeedLagMs` (the caches' bound). Every other
 * call goes to the store.
 */
import type { Clock } from '../clock.js';
import type { Invalidation } from '../sessions/change-follower.js';
import type { ChangeFeedStore } from '../sessions/types.js';
import { NodeCache, type NodeCacheOptions } from '../util/node-cache.js';
import type { PolicyScope, RecordingFilter, RecordingPolicy, RecordingProgress, RecordingRecord, RecordingStore } from './types.js';

const PREFIX = 'recording:';

export class PolicyCachingRecordingStore implements RecordingStore {
  /** The policies of (project, server), keyed `<projectId>/<serverId>`. */
  private readonly cache: NodeCache<RecordingPolicy[]>;

  constructor(
    private readonly inner: RecordingStore,
    private readonly changes: ChangeFeedStore,
    private readonly clock: Clock,
    cache: Pick<NodeCacheOptions, 'maxEntries' | 'maxAgeMs' | 'trusted'>,
  ) {
    this.cache = new NodeCache(cache);
  }

  /** Drops what a change makes stale (`all`: everything). */
  invalidate(i: Invalidation): void {
    if (i === 'all') return this.cache.clear();
    if (i.kind !== 'record-changed' || !i.credential?.startsWith(PREFIX)) return;
    const [scope, id] = i.credential.slice(PREFIX.length).split(':') as [string, string | undefined];
    this.drop(scope as PolicyScope, id ?? '');
  }

  private drop(scope: PolicyScope, scopeId: string): void {
    this.cache.deleteWhere((_, key) => (scope === 'project' ? key.startsWith(`${scopeId}/`) : key.endsWith(`/${scopeId}`)));
  }

  /** Drops the policy here at once, and on every other node through the feed. */
  private async changed(scope: PolicyScope, scopeId: string, actor: string | null): Promise<void> {
    this.drop(scope, scopeId);
    await this.changes.appendChange({
      at: this.clock.now(), kind: 'record-changed', serverId: null, sessionId: null, credential: `${PREFIX}${scope}:${scopeId}`, actor,
    });
  }

  async recordingPoliciesFor(projectId: string, serverId: string): Promise<RecordingPolicy[]> {
    return (await this.cache.get(`${projectId}/${serverId}`, () => this.inner.recordingPoliciesFor(projectId, serverId))) ?? [];
  }

  async putRecordingPolicy(p: RecordingPolicy): Promise<void> {
    await this.inner.putRecordingPolicy(p);
    await this.changed(p.scope, p.scopeId, p.updatedBy ?? null);
  }

  async deleteRecordingPolicy(scope: PolicyScope, scopeId: string): Promise<boolean> {
    const deleted = await this.inner.deleteRecordingPolicy(scope, scopeId);
    if (deleted) await this.changed(scope, scopeId, null);
    return deleted;
  }

  listRecordingPolicies(projectId?: string): Promise<RecordingPolicy[]> {
    return this.inner.listRecordingPolicies(projectId);
  }
  insertRecording(r: RecordingRecord): Promise<void> {
    return this.inner.insertRecording(r);
  }
  updateRecordingProgress(id: string, p: RecordingProgress): Promise<void> {
    return this.inner.updateRecordingProgress(id, p);
  }
  getRecording(id: string): Promise<RecordingRecord | null> {
    return this.inner.getRecording(id);
  }
  listRecordings(f: RecordingFilter): Promise<RecordingRecord[]> {
    return this.inner.listRecordings(f);
  }
  deleteRecording(id: string): Promise<boolean> {
    return this.inner.deleteRecording(id);
  }
  recordingBytesByProject(): Promise<Array<{ projectId: string; bytes: number }>> {
    return this.inner.recordingBytesByProject();
  }

  /** Cache counters, for the benchmarks and tests. */
  cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.cache.hits, misses: this.cache.misses, size: this.cache.size };
  }
}
