/**
 * The RecordingStore port over SQL, for both adapters: the statements are written once with `?`
 * placeholders (SQLite's) and numbered (`$1`...) for PostgreSQL. Tables: migration 9.
 */
import type { PolicyScope, RecordingFilter, RecordingPolicy, RecordingProgress, RecordingRecord, RecordingStore } from '../recording/types.js';
import { num, optNum, type Row } from './row-mappers.js';

/** The three calls the store needs, in `?` placeholder style. */
export interface SqlRunner {
  rows(text: string, params: readonly unknown[]): Promise<Row[]>;
  count(text: string, params: readonly unknown[]): Promise<number>;
}

/** `?` -> `$1`, `$2`... (no statement here holds a literal `?`). */
export function numberedPlaceholders(text: string): string {
  let i = 0;
  return text.replace(/\?/g, () => `$${++i}`);
}

const bool = (v: unknown): boolean => v === true || Number(v) === 1;

function rowToPolicy(r: Row): RecordingPolicy {
  return {
    scope: String(r['scope']) as PolicyScope, scopeId: String(r['scope_id']), projectId: String(r['project_id']), enabled: bool(r['enabled']),
    keystrokes: bool(r['keystrokes']), retentionDays: num(r['retention_days']), quotaBytes: optNum(r['quota_bytes']), updatedAt: num(r['updated_at']),
    updatedBy: r['updated_by'] === null || r['updated_by'] === undefined ? null : String(r['updated_by']),
  };
}

function rowToRecording(r: Row): RecordingRecord {
  return {
    id: String(r['id']), sessionId: String(r['session_id']), projectId: String(r['project_id']), serverId: String(r['server_id']), nodeId: String(r['node_id']),
    file: String(r['file']), sealedKey: String(r['sealed_key']), keystrokes: bool(r['keystrokes']), startedAt: num(r['started_at']), endedAt: optNum(r['ended_at']),
    expiresAt: num(r['expires_at']), bytes: num(r['bytes']), chunks: num(r['chunks']), digest: String(r['digest']), durationMs: num(r['duration_ms']),
  };
}

export class SqlRecordingStore implements RecordingStore {
  constructor(private readonly db: SqlRunner) {}

  async putRecordingPolicy(p: RecordingPolicy): Promise<void> {
    await this.db.count(
      `INSERT INTO recording_policies (scope, scope_id, project_id, enabled, keystrokes, retention_days, quota_bytes, updated_at, updated_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope, scope_id) DO UPDATE SET project_id = excluded.project_id, enabled = excluded.enabled, keystrokes = excluded.keystrokes,
         retention_days = excluded.retention_days, quota_bytes = excluded.quota_bytes, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [p.scope, p.scopeId, p.projectId, p.enabled ? 1 : 0, p.keystrokes ? 1 : 0, p.retentionDays, p.quotaBytes, p.updatedAt, p.updatedBy]);
  }
  async deleteRecordingPolicy(scope: PolicyScope, scopeId: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM recording_policies WHERE scope = ? AND scope_id = ?', [scope, scopeId])) > 0;
  }
  async recordingPoliciesFor(projectId: string, serverId: string): Promise<RecordingPolicy[]> {
    return (await this.db.rows(
      `SELECT * FROM recording_policies WHERE (scope = 'project' AND scope_id = ?) OR (scope = 'server' AND scope_id = ?)`, [projectId, serverId])).map(rowToPolicy);
  }
  async listRecordingPolicies(projectId?: string): Promise<RecordingPolicy[]> {
    const rows = projectId === undefined
      ? await this.db.rows('SELECT * FROM recording_policies ORDER BY project_id, scope, scope_id', [])
      : await this.db.rows('SELECT * FROM recording_policies WHERE project_id = ? ORDER BY scope, scope_id', [projectId]);
    return rows.map(rowToPolicy);
  }
  async insertRecording(r: RecordingRecord): Promise<void> {
    await this.db.count(
      `INSERT INTO recordings (id, session_id, project_id, server_id, node_id, file, sealed_key, keystrokes, started_at, ended_at, expires_at, bytes, chunks, digest, duration_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [r.id, r.sessionId, r.projectId, r.serverId, r.nodeId, r.file, r.sealedKey, r.keystrokes ? 1 : 0, r.startedAt, r.endedAt, r.expiresAt, r.bytes, r.chunks, r.digest, r.durationMs]);
  }
  async updateRecordingProgress(id: string, p: RecordingProgress): Promise<void> {
    await this.db.count(
      'UPDATE recordings SET bytes = ?, chunks = ?, digest = ?, duration_ms = ?, ended_at = COALESCE(?, ended_at) WHERE id = ? AND chunks <= ?',
      [p.bytes, p.chunks, p.digest, p.durationMs, p.endedAt ?? null, id, p.chunks]);
  }
  async getRecording(id: string): Promise<RecordingRecord | null> {
    const r = (await this.db.rows('SELECT * FROM recordings WHERE id = ?', [id]))[0];
    return r ? rowToRecording(r) : null;
  }
  async listRecordings(f: RecordingFilter): Promise<RecordingRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.projectId !== undefined) where.push('project_id = ?') && params.push(f.projectId);
    if (f.serverId !== undefined) where.push('server_id = ?') && params.push(f.serverId);
    if (f.sessionId !== undefined) where.push('session_id = ?') && params.push(f.sessionId);
    if (f.expiredBefore !== undefined) where.push('expires_at < ?') && params.push(f.expiredBefore);
    params.push(Math.min(Math.max(f.limit ?? 100, 1), 10_000));
    const order = f.oldestFirst ? 'started_at, id' : 'started_at DESC, id DESC';
    return (await this.db.rows(`SELECT * FROM recordings ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${order} LIMIT ?`, params)).map(rowToRecording);
  }
  async deleteRecording(id: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM recordings WHERE id = ?', [id])) > 0;
  }
  async recordingBytesByProject(): Promise<Array<{ projectId: string; bytes: number }>> {
    return (await this.db.rows('SELECT project_id, SUM(bytes) AS bytes FROM recordings GROUP BY project_id', [])).map((r) => ({ projectId: String(r['project_id']), bytes: num(r['bytes']) }));
  }
}
