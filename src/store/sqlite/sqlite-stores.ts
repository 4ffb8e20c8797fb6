/** SQLite implementations of every store port (better-sqlite3: synchronous, wrapped as async). */
import type { AuditEvent, AuditFilter, AuditStore } from '../../audit/types.js';
import type {
  AccessKey, AccessKeyPatch, Domain, IamTokenRecord, IdentityStore, Project, ProjectPatch, SignatureFailureOutcome, SignatureFailureRecord, SignatureFailureState,
  SignatureFailureStore, User, UserPatch,
} from '../../identity/types.js';
import type { BackendLockStore } from '../../backends/types.js';
import type { Server, ServerFilter, ServerPatch, ServerStore, ServerSyncPlan, ServerSyncScope } from '../../inventory/types.js';
import { KeyedMutex } from '../../util/keyed-mutex.js';
import type { ChangeEvent, ChangeFeedStore, SessionOwner, SessionRecord, SessionStore, SessionTraffic } from '../../sessions/types.js';
import type { ConsoleTokenRecord, ConsoleTokenStore, ConsumeResult, IssuedBy, RevocationReason } from '../../tokens/types.js';
import type { SerialOutputRecord, SerialOutputStore } from '../../serial/types.js';
import {
  consumeRefusal, serverAtConsume, num, optNum, rowToAccessKey, rowToAudit, rowToChange, rowToConsoleToken, rowToDomain, rowToIamToken, rowToProject,
  rowToSerialOutput, rowToServer, rowToSession, rowToSignatureFailure, rowToUser, CONSOLE_COLUMNS, consoleColumnValues, type Row,
} from '../row-mappers.js';
import { ACCESS_KEY_COLUMNS, accessKeyValues, patchColumns } from '../identity-sql.js';
import { auditWhere, JSON_ARRAY } from '../audit-sql.js';
import { applyServerPatch } from '../server-patch.js';
import { recordSignatureFailureSql, signatureFailureOutcome } from '../signature-failure-sql.js';
import type { Stores } from '../stores.js';
import { SqliteKeyCheckStore } from './sqlite-key-check-store.js';
import { SqlRecordingStore } from '../recording-store.js';
import { GroupCommit, openSqliteDatabase, prep, sqlite, type Db } from './sqlite-database.js';

export class SqliteIdentityStore implements IdentityStore {
  constructor(private readonly db: Db) {}

  insertDomain(d: Domain): Promise<void> {
    return sqlite(() => void prep(this.db, 'INSERT INTO domains (id, name, created_at) VALUES (?, ?, ?)').run(d.id, d.name, d.createdAt));
  }
  getDomain(id: string): Promise<Domain | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM domains WHERE id = ?').get(id) as Row | undefined;
      return r ? rowToDomain(r) : null;
    });
  }
  getDomainByName(name: string): Promise<Domain | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM domains WHERE name = ?').get(name) as Row | undefined;
      return r ? rowToDomain(r) : null;
    });
  }
  insertProject(p: Project): Promise<void> {
    return sqlite(() => void prep(this.db, 'INSERT INTO projects (id, name, domain_id, created_at, description) VALUES (?, ?, ?, ?, ?)')
      .run(p.id, p.name, p.domainId, p.createdAt, p.description ?? ''));
  }
  updateProject(id: string, patch: ProjectPatch): Promise<Project | null> {
    const set = patchColumns({ name: patch.name, description: patch.description });
    return sqlite(() => {
      const r = (set.cols.length === 0
        ? prep(this.db, 'SELECT * FROM projects WHERE id = ?').get(id)
        : prep(this.db, `UPDATE projects SET ${set.cols.map((c) => `${c} = ?`).join(', ')} WHERE id = ? RETURNING *`).get(...set.values, id)) as Row | undefined;
      return r ? rowToProject(r) : null;
    });
  }
  deleteProject(id: string): Promise<'deleted' | 'missing' | 'in-use'> {
    return sqlite(() => this.db.transaction((): 'deleted' | 'missing' | 'in-use' => {
      if (!prep(this.db, 'SELECT 1 FROM projects WHERE id = ?').get(id)) return 'missing';
      if (prep(this.db, 'SELECT 1 FROM servers WHERE project_id = ? UNION ALL SELECT 1 FROM access_keys WHERE project_id = ? LIMIT 1').get(id, id)) return 'in-use';
      prep(this.db, 'DELETE FROM iam_tokens WHERE project_id = ?').run(id);
      prep(this.db, 'DELETE FROM projects WHERE id = ?').run(id);
      return 'deleted';
    }).immediate());
  }
  getProject(id: string): Promise<Project | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM projects WHERE id = ?').get(id) as Row | undefined;
      return r ? rowToProject(r) : null;
    });
  }
  listProjects(): Promise<Project[]> {
    return sqlite(() => (prep(this.db, 'SELECT * FROM projects ORDER BY created_at, id').all() as Row[]).map(rowToProject));
  }
  insertUser(u: User): Promise<void> {
    return sqlite(() => void prep(this.db, 'INSERT INTO users (id, domain_id, name, password_hash, actions, created_at, enabled, admin, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(u.id, u.domainId, u.name, u.passwordHash, JSON.stringify(u.actions), u.createdAt, u.enabled === false ? 0 : 1, u.admin ? 1 : 0, u.description ?? ''));
  }
  getUser(id: string): Promise<User | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM users WHERE id = ?').get(id) as Row | undefined;
      return r ? rowToUser(r) : null;
    });
  }
  getUserByName(domainId: string, name: string): Promise<User | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM users WHERE domain_id = ? AND name = ?').get(domainId, name) as Row | undefined;
      return r ? rowToUser(r) : null;
    });
  }
  listUsers(domainId: string): Promise<User[]> {
    return sqlite(() => (prep(this.db, 'SELECT * FROM users WHERE domain_id = ? ORDER BY created_at, id').all(domainId) as Row[]).map(rowToUser));
  }
  updateUser(id: string, patch: UserPatch): Promise<User | null> {
    const set = patchColumns({
      name: patch.name, description: patch.description, password_hash: patch.passwordHash,
      enabled: patch.enabled === undefined ? undefined : patch.enabled ? 1 : 0, admin: patch.admin === undefined ? undefined : patch.admin ? 1 : 0,
    });
    return sqlite(() => {
      const r = (set.cols.length === 0
        ? prep(this.db, 'SELECT * FROM users WHERE id = ?').get(id)
        : prep(this.db, `UPDATE users SET ${set.cols.map((c) => `${c} = ?`).join(', ')} WHERE id = ? RETURNING *`).get(...set.values, id)) as Row | undefined;
      return r ? rowToUser(r) : null;
    });
  }
  deleteUser(id: string): Promise<boolean> {
    return sqlite(() => this.db.transaction(() => {
      prep(this.db, 'DELETE FROM access_keys WHERE user_id = ?').run(id);
      prep(this.db, 'DELETE FROM iam_tokens WHERE user_id = ?').run(id);
      return prep(this.db, 'DELETE FROM users WHERE id = ?').run(id).changes > 0;
    }).immediate());
  }
  insertAccessKey(k: AccessKey): Promise<void> {
    return sqlite(() => void prep(this.db, `INSERT INTO access_keys (${ACCESS_KEY_COLUMNS.join(', ')}) VALUES (${ACCESS_KEY_COLUMNS.map(() => '?').join(', ')})`)
      .run(...accessKeyValues(k)));
  }
  insertPermanentAccessKey(k: AccessKey, max: number): Promise<boolean> {
    // One statement: SQLite runs one writer at a time, so the count and the insert cannot interleave.
    return sqlite(() => prep(this.db,
      `INSERT INTO access_keys (${ACCESS_KEY_COLUMNS.join(', ')}) SELECT ${ACCESS_KEY_COLUMNS.map(() => '?').join(', ')}
       WHERE (SELECT COUNT(*) FROM access_keys WHERE user_id = ? AND expires_at IS NULL) < ?`,
    ).run(...accessKeyValues(k), k.userId, max).changes > 0);
  }
  updateAccessKey(ak: string, patch: AccessKeyPatch): Promise<AccessKey | null> {
    const set = patchColumns({ status: patch.status, description: patch.description });
    return sqlite(() => {
      const r = (set.cols.length === 0
        ? prep(this.db, 'SELECT * FROM access_keys WHERE ak = ?').get(ak)
        : prep(this.db, `UPDATE access_keys SET ${set.cols.map((c) => `${c} = ?`).join(', ')} WHERE ak = ? RETURNING *`).get(...set.values, ak)) as Row | undefined;
      return r ? rowToAccessKey(r) : null;
    });
  }
  purgeTemporaryAccessKeys(now: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now).changes);
  }
  deleteUserIamTokens(userId: string, except?: string): Promise<string[]> {
    return sqlite(() => (prep(this.db, 'DELETE FROM iam_tokens WHERE user_id = ? AND hash <> ? RETURNING hash').all(userId, except ?? '') as Row[]).map((r) => r['hash'] as string));
  }
  getAccessKey(ak: string): Promise<AccessKey | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM access_keys WHERE ak = ?').get(ak) as Row | undefined;
      return r ? rowToAccessKey(r) : null;
    });
  }
  listAccessKeys(userId: string): Promise<AccessKey[]> {
    return sqlite(() => (prep(this.db, 'SELECT * FROM access_keys WHERE user_id = ? ORDER BY created_at, ak').all(userId) as Row[]).map(rowToAccessKey));
  }
  deleteAccessKey(ak: string): Promise<boolean> {
    return sqlite(() => prep(this.db, 'DELETE FROM access_keys WHERE ak = ?').run(ak).changes > 0);
  }
  insertIamToken(t: IamTokenRecord): Promise<void> {
    return sqlite(() => void prep(this.db, 'INSERT INTO iam_tokens (hash, user_id, project_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(t.hash, t.userId, t.projectId, t.issuedAt, t.expiresAt));
  }
  getIamToken(hash: string): Promise<IamTokenRecord | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM iam_tokens WHERE hash = ?').get(hash) as Row | undefined;
      return r ? rowToIamToken(r) : null;
    });
  }
  deleteIamToken(hash: string): Promise<boolean> {
    return sqlite(() => prep(this.db, 'DELETE FROM iam_tokens WHERE hash = ?').run(hash).changes > 0);
  }
  purgeIamTokens(now: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM iam_tokens WHERE expires_at <= ?').run(now).changes);
  }
}

const SQLITE_RECORD_FAILURE = recordSignatureFailureSql({ ak: '@ak', address: '@address', now: '@now', threshold: '@threshold', until: '@until' });

export class SqliteSignatureFailureStore implements SignatureFailureStore {
  /** `reads`: where the per-call lockout read is grouped with the other calls' of the same turn. */
  constructor(private readonly db: Db, private readonly reads: GroupCommit) {}

  getSignatureFailures(ak: string, address: string, now: number): Promise<SignatureFailureState | null> {
    return this.reads.run(() => {
      const r = prep(this.db, 'SELECT failures, locked_until FROM signature_failures WHERE ak = ? AND address = ? AND expires_at > ?').get(ak, address, now) as Row | undefined;
      return r ? { failures: num(r['failures']), lockedUntil: optNum(r['locked_until']) } : null;
    });
  }
  recordSignatureFailure(ak: string, address: string, now: number, threshold: number, lockMs: number): Promise<SignatureFailureOutcome> {
    return sqlite(() => signatureFailureOutcome(prep(this.db, SQLITE_RECORD_FAILURE).get({ ak, address, now, threshold, until: now + lockMs }) as Row, now));
  }
  clearSignatureFailures(ak: string, address: string | null): Promise<SignatureFailureRecord[]> {
    return sqlite(() => {
      const rows = address === null
        ? prep(this.db, 'DELETE FROM signature_failures WHERE ak = ? RETURNING *').all(ak)
        : prep(this.db, 'DELETE FROM signature_failures WHERE ak = ? AND address = ? RETURNING *').all(ak, address);
      return (rows as Row[]).map(rowToSignatureFailure).sort((a, b) => (a.address < b.address ? -1 : 1));
    });
  }
  purgeSignatureFailures(now: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM signature_failures WHERE expires_at <= ?').run(now).changes);
  }
  trimSignatureFailures(maxRows: number): Promise<number> {
    return sqlite(() => prep(this.db,
      `DELETE FROM signature_failures WHERE rowid IN (
         SELECT rowid FROM signature_failures ORDER BY expires_at DESC LIMIT -1 OFFSET ?)`,
    ).run(maxRows).changes);
  }
}

function serverWhere(f: ServerFilter): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  if (f.projectId !== undefined) { conds.push('project_id = ?'); params.push(f.projectId); }
  if (f.name !== undefined) { conds.push('name = ?'); params.push(f.name); }
  if (f.status !== undefined) { conds.push('status = ?'); params.push(f.status); }
  if (f.availabilityZone !== undefined) { conds.push('availability_zone = ?'); params.push(f.availabilityZone); }
  if (f.projectIds !== undefined) { conds.push('project_id IN (SELECT value FROM json_each(?))'); params.push(JSON.stringify(f.projectIds)); }
  if (f.afterId !== undefined) {
    conds.push('(created_at, id) > (SELECT created_at, id FROM servers WHERE id = ?)');
    params.push(f.afterId);
  }
  return { sql: conds.length ? ' WHERE ' + conds.join(' AND ') : '', params };
}

export class SqliteServerStore implements ServerStore {
  constructor(private readonly db: Db) {}

  insertServer(s: Server): Promise<void> {
    return sqlite(() => void prep(this.db, 
      `INSERT INTO servers (id, project_id, name, status, availability_zone, created_at, updated_at,
         ${CONSOLE_COLUMNS.join(', ')}, console_revision)
       VALUES (?, ?, ?, ?, ?, ?, ?, ${CONSOLE_COLUMNS.map(() => '?').join(', ')}, ?)`,
    ).run(s.id, s.projectId, s.name, s.status, s.availabilityZone, s.createdAt, s.updatedAt,
      ...consoleColumnValues(s.console), s.consoleRevision));
  }
  getServer(id: string): Promise<Server | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM servers WHERE id = ?').get(id) as Row | undefined;
      return r ? rowToServer(r) : null;
    });
  }
  listServers(f: ServerFilter): Promise<Server[]> {
    return sqlite(() => {
      const w = serverWhere(f);
      const rows = prep(this.db, `SELECT * FROM servers${w.sql} ORDER BY created_at, id LIMIT ? OFFSET ?`)
        .all(...w.params, f.limit ?? -1, f.offset ?? 0) as Row[];
      return rows.map(rowToServer);
    });
  }
  countServers(f: ServerFilter): Promise<number> {
    return sqlite(() => {
      const w = serverWhere(f);
      return num((prep(this.db, `SELECT COUNT(*) AS n FROM servers${w.sql}`).get(...w.params) as Row)['n']);
    });
  }
  updateServer(id: string, patch: ServerPatch, now: number): Promise<{ before: Server; after: Server } | null> {
    return sqlite(() => this.db.transaction(() => {
      const r = prep(this.db, 'SELECT * FROM servers WHERE id = ?').get(id) as Row | undefined;
      if (!r) return null;
      const before = rowToServer(r);
      const after = applyServerPatch(before, patch, now);
      prep(this.db, 
        `UPDATE servers SET name = ?, status = ?, availability_zone = ?, updated_at = ?,
           ${CONSOLE_COLUMNS.map((c) => `${c} = ?`).join(', ')}, console_revision = ? WHERE id = ?`,
      ).run(after.name, after.status, after.availabilityZone, now, ...consoleColumnValues(after.console), after.consoleRevision, id);
      return { before, after };
    }).immediate());
  }
  deleteServer(id: string): Promise<Server | null> {
    return sqlite(() => {
      const r = prep(this.db, 'DELETE FROM servers WHERE id = ? RETURNING *').get(id) as Row | undefined;
      return r ? rowToServer(r) : null;
    });
  }
  syncServers(scope: ServerSyncScope, plan: (current: Server[]) => ServerSyncPlan, opts: { now: number; apply: boolean; actor: string | null }): Promise<ServerSyncPlan> {
    return sqlite(() => this.db.transaction(() => {
      const rows = scope.availabilityZone === undefined
        ? prep(this.db, 'SELECT * FROM servers WHERE project_id = ?').all(scope.projectId)
        : prep(this.db, 'SELECT * FROM servers WHERE project_id = ? AND availability_zone = ?').all(scope.projectId, scope.availabilityZone);
      const p = plan((rows as Row[]).map(rowToServer));
      if (!opts.apply) return p;
      const insert = prep(this.db,
        `INSERT INTO servers (id, project_id, name, status, availability_zone, created_at, updated_at,
           ${CONSOLE_COLUMNS.join(', ')}, console_revision)
         VALUES (?, ?, ?, ?, ?, ?, ?, ${CONSOLE_COLUMNS.map(() => '?').join(', ')}, ?)`);
      for (const s of p.create) {
        insert.run(s.id, s.projectId, s.name, s.status, s.availabilityZone, s.createdAt, s.updatedAt, ...consoleColumnValues(s.console), s.consoleRevision);
      }
      const update = prep(this.db,
        `UPDATE servers SET name = ?, status = ?, availability_zone = ?, updated_at = ?,
           ${CONSOLE_COLUMNS.map((c) => `${c} = ?`).join(', ')}, console_revision = ? WHERE id = ?`);
      for (const { after: a } of p.update) {
        update.run(a.name, a.status, a.availabilityZone, a.updatedAt, ...consoleColumnValues(a.console), a.consoleRevision, a.id);
      }
      const del = prep(this.db, 'DELETE FROM servers WHERE id = ?');
      for (const s of p.delete) del.run(s.id);
      const revoke = prep(this.db, 'UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE server_id = ? AND revoked_at IS NULL');
      const change = prep(this.db, 'INSERT INTO change_events (at, kind, server_id, session_id, actor, reason) VALUES (?, ?, ?, NULL, ?, NULL)');
      for (const e of p.ended) {
        revoke.run(opts.now, e.reason, e.serverId);
        change.run(opts.now, e.reason, e.serverId, opts.actor);
      }
      return p;
    }).immediate());
  }
}

export class SqliteConsoleTokenStore implements ConsoleTokenStore {
  constructor(private readonly db: Db, private readonly writes: GroupCommit) {}

  insertConsoleToken(t: ConsoleTokenRecord): Promise<void> {
    return this.writes.run(() => void prep(this.db, 
      `INSERT INTO console_tokens (hash, server_id, project_id, kind, console_revision, issued_at, expires_at, consumed_at, consumed_by, revoked_at, revoked_reason, issued_by, issued_by_user)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(t.hash, t.serverId, t.projectId, t.kind ?? 'vnc', t.consoleRevision, t.issuedAt, t.expiresAt, t.consumedAt, t.consumedBy, t.revokedAt, t.revokedReason, t.issuedBy ?? null, t.issuedByUser ?? null));
  }
  consumeConsoleToken(hash: string, now: number, nodeId: string): Promise<ConsumeResult> {
    // Decided when the statement runs (one writer at a time), answered after the group's COMMIT.
    return this.writes.run(() => {
      // One conditional UPDATE: SQLite's write lock makes it exactly-once across processes.
      const won = prep(this.db, 
        `UPDATE console_tokens SET consumed_at = ?, consumed_by = ?
         WHERE hash = ? AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > ? RETURNING *`,
      ).get(now, nodeId, hash, now) as Row | undefined;
      if (won) {
        // The proxy's re-check, in the same transaction: a stop committed before it is seen.
        const s = prep(this.db, 'SELECT project_id, status, console_revision FROM servers WHERE id = ?').get(won['server_id']) as Row | undefined;
        return { ok: true, token: rowToConsoleToken(won), server: serverAtConsume(s) } as const;
      }
      return consumeRefusal(prep(this.db, 'SELECT consumed_at, revoked_reason FROM console_tokens WHERE hash = ?').get(hash) as Row | undefined);
    });
  }
  releaseConsoleToken(hash: string, consumedAt: number, nodeId: string): Promise<boolean> {
    return this.writes.run(() => prep(this.db,
      'UPDATE console_tokens SET consumed_at = NULL, consumed_by = NULL WHERE hash = ? AND consumed_at = ? AND consumed_by = ?',
    ).run(hash, consumedAt, nodeId).changes > 0);
  }
  getConsoleToken(hash: string): Promise<ConsoleTokenRecord | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM console_tokens WHERE hash = ?').get(hash) as Row | undefined;
      return r ? rowToConsoleToken(r) : null;
    });
  }
  revokeIssuedConsoleTokens(by: IssuedBy, reason: RevocationReason, now: number): Promise<number> {
    // Both through console_tokens_issuer (issued_by_user, issued_by).
    return sqlite(() => ('issuedBy' in by
      ? prep(this.db, 'UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE issued_by_user = ? AND issued_by = ? AND revoked_at IS NULL AND consumed_at IS NULL')
        .run(now, reason, by.userId, by.issuedBy)
      : prep(this.db, 'UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE issued_by_user = ? AND revoked_at IS NULL AND consumed_at IS NULL')
        .run(now, reason, by.userId)).changes);
  }
  revokeServerConsoleTokens(serverId: string, reason: RevocationReason, now: number): Promise<number> {
    return sqlite(() => prep(this.db, 'UPDATE console_tokens SET revoked_at = ?, revoked_reason = ? WHERE server_id = ? AND revoked_at IS NULL')
      .run(now, reason, serverId).changes);
  }
  purgeConsoleTokens(before: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM console_tokens WHERE expires_at <= ?').run(before).changes);
  }
}

export class SqliteAuditStore implements AuditStore {
  constructor(private readonly db: Db, private readonly writes: GroupCommit) {}

  appendAudit(e: AuditEvent): Promise<void> {
    return this.writes.run(() => void prep(this.db,
      `INSERT INTO audit_events (at, kind, node_id, project_id, server_id, token_ref, session_id, detail,
         actor_user_id, actor_credential, target, request_id, client_address, outcome, domain_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(e.at, e.kind, e.nodeId, e.projectId, e.serverId, e.tokenRef, e.sessionId, JSON.stringify(e.detail),
      e.actorUserId ?? null, e.actorCredential ?? null, e.target ?? null, e.requestId ?? null, e.clientAddress ?? null, e.outcome ?? null, e.domainId ?? null));
  }
  /** Reads what this node has written: the events still queued for the group commit are committed first. */
  listAudit(f: AuditFilter): Promise<AuditEvent[]> {
    return sqlite(() => {
      this.writes.flush();
      const w = auditWhere(f, () => '?', JSON_ARRAY.sqlite);
      const rows = prep(this.db, `SELECT * FROM audit_events${w.where}${w.order} LIMIT ?`).all(...w.params, f.limit ?? 1000) as Row[];
      return rows.map(rowToAudit);
    });
  }
  purgeAudit(before: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM audit_events WHERE at < ?').run(before).changes);
  }
}

/** Writes a session row; a row with the same id (a sync wrote it first) is replaced. */
const UPSERT_SESSION =
  `INSERT INTO console_sessions (id, node_id, instance_id, server_id, project_id, token_ref, client_address, started_at, heartbeat_at,
     user_id, credential, bytes_to_client, bytes_to_backend)
   VALUES (@id, @nodeId, @instanceId, @serverId, @projectId, @tokenRef, @clientAddress, @startedAt, @heartbeatAt,
     @userId, @credential, @bytesToClient, @bytesToBackend)
   ON CONFLICT (id) DO UPDATE SET node_id = excluded.node_id, instance_id = excluded.instance_id, heartbeat_at = excluded.heartbeat_at,
     bytes_to_client = excluded.bytes_to_client, bytes_to_backend = excluded.bytes_to_backend`;

function sessionParams(s: SessionRecord): Record<string, string | number | null> {
  return {
    id: s.id, nodeId: s.nodeId, instanceId: s.instanceId, serverId: s.serverId, projectId: s.projectId, tokenRef: s.tokenRef,
    clientAddress: s.clientAddress, startedAt: s.startedAt, heartbeatAt: s.heartbeatAt,
    userId: s.userId ?? null, credential: s.credential ?? null, bytesToClient: s.bytesToClient ?? 0, bytesToBackend: s.bytesToBackend ?? 0,
  };
}

export class SqliteSessionStore implements SessionStore {
  constructor(private readonly db: Db, private readonly writes: GroupCommit) {}

  insertSession(s: SessionRecord): Promise<void> {
    return this.writes.run(() => void prep(this.db, UPSERT_SESSION).run(sessionParams(s)));
  }
  deleteSession(id: string): Promise<void> {
    return this.writes.run(() => void prep(this.db, 'DELETE FROM console_sessions WHERE id = ?').run(id));
  }
  syncSessions(owner: SessionOwner, live: readonly SessionRecord[], now: number, replacePredecessors: boolean): Promise<number> {
    return sqlite(() => this.db.transaction(() => {
      const upsert = prep(this.db, UPSERT_SESSION);
      for (const s of live) upsert.run(sessionParams({ ...s, heartbeatAt: now }));
      const ids = JSON.stringify(live.map((s) => s.id));
      let deleted = prep(this.db, 'DELETE FROM console_sessions WHERE node_id = ? AND instance_id = ? AND id NOT IN (SELECT value FROM json_each(?))')
        .run(owner.nodeId, owner.instanceId, ids).changes;
      if (replacePredecessors) {
        deleted += prep(this.db, 'DELETE FROM console_sessions WHERE node_id = ? AND instance_id <> ?').run(owner.nodeId, owner.instanceId).changes;
      }
      return deleted;
    }).immediate());
  }
  touchSessions(owner: SessionOwner, now: number, traffic: readonly SessionTraffic[] = []): Promise<number> {
    return sqlite(() => this.db.transaction(() => {
      const bytes = prep(this.db, 'UPDATE console_sessions SET bytes_to_client = ?, bytes_to_backend = ? WHERE id = ? AND node_id = ? AND instance_id = ?');
      for (const t of traffic) bytes.run(t.bytesToClient, t.bytesToBackend, t.id, owner.nodeId, owner.instanceId);
      return prep(this.db, 'UPDATE console_sessions SET heartbeat_at = ? WHERE node_id = ? AND instance_id = ?')
        .run(now, owner.nodeId, owner.instanceId).changes;
    }).immediate());
  }
  listSessions(f: { serverId?: string; freshSince: number }): Promise<SessionRecord[]> {
    return sqlite(() => {
      const rows = f.serverId !== undefined
        ? prep(this.db, 'SELECT * FROM console_sessions WHERE server_id = ? AND heartbeat_at >= ? ORDER BY started_at').all(f.serverId, f.freshSince)
        : prep(this.db, 'SELECT * FROM console_sessions WHERE heartbeat_at >= ? ORDER BY started_at').all(f.freshSince);
      return (rows as Row[]).map(rowToSession);
    });
  }
  getSession(id: string): Promise<SessionRecord | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM console_sessions WHERE id = ?').get(id) as Row | undefined;
      return r ? rowToSession(r) : null;
    });
  }
  purgeStaleSessions(before: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM console_sessions WHERE heartbeat_at < ?').run(before).changes);
  }
}

export class SqliteChangeFeedStore implements ChangeFeedStore {
  constructor(private readonly db: Db) {}

  appendChange(e: Omit<ChangeEvent, 'id'>): Promise<number> {
    return sqlite(() => Number(prep(this.db, 'INSERT INTO change_events (at, kind, server_id, session_id, credential, actor, reason) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(e.at, e.kind, e.serverId, e.sessionId, e.credential ?? null, e.actor ?? null, e.reason ?? null).lastInsertRowid));
  }
  changesSince(afterId: number, limit: number): Promise<ChangeEvent[]> {
    return sqlite(() => (prep(this.db, 'SELECT * FROM change_events WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as Row[]).map(rowToChange));
  }
  latestChangeId(): Promise<number> {
    return sqlite(() => num((prep(this.db, 'SELECT COALESCE(MAX(id), 0) AS id FROM change_events').get() as Row)['id']));
  }
  purgeChanges(before: number): Promise<number> {
    return sqlite(() => prep(this.db, 'DELETE FROM change_events WHERE at < ? AND id < (SELECT MAX(id) FROM change_events)').run(before).changes);
  }
}

export class SqliteSerialOutputStore implements SerialOutputStore {
  constructor(private readonly db: Db) {}

  claimSerialPort(serverId: string, holder: string, now: number, heldUntil: number): Promise<boolean> {
    return sqlite(() => prep(this.db,
      `INSERT INTO serial_output (server_id, holder, held_until, end_offset, data, updated_at) VALUES (?, ?, ?, 0, x'', ?)
       ON CONFLICT (server_id) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until
       WHERE serial_output.holder = excluded.holder OR serial_output.held_until <= ?`,
    ).run(serverId, holder, heldUntil, now, now).changes === 1);
  }
  saveSerialOutput(serverId: string, holder: string, o: { endOffset: number; data: Buffer; now: number; heldUntil: number }): Promise<boolean> {
    return sqlite(() => prep(this.db, 'UPDATE serial_output SET end_offset = ?, data = ?, updated_at = ?, held_until = ? WHERE server_id = ? AND holder = ?')
      .run(o.endOffset, o.data, o.now, o.heldUntil, serverId, holder).changes === 1);
  }
  releaseSerialPort(serverId: string, holder: string): Promise<void> {
    return sqlite(() => void prep(this.db, 'UPDATE serial_output SET held_until = 0 WHERE server_id = ? AND holder = ?').run(serverId, holder));
  }
  getSerialOutput(serverId: string): Promise<SerialOutputRecord | null> {
    return sqlite(() => {
      const r = prep(this.db, 'SELECT * FROM serial_output WHERE server_id = ?').get(serverId) as Row | undefined;
      return r ? rowToSerialOutput(r) : null;
    });
  }
  deleteSerialOutput(serverId: string): Promise<void> {
    return sqlite(() => void prep(this.db, 'DELETE FROM serial_output WHERE server_id = ?').run(serverId));
  }
}

/** BackendLockStore of a single node: a mutex per key in this process. */
export class InProcessBackendLocks implements BackendLockStore {
  private readonly mutex = new KeyedMutex();
  withLock<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(key, signal, fn);
  }
}

/**
 * Opens the SQLite database at `path` and returns every store port over it. `create: false`
 * opens an existing store only (StoreMissingError otherwise) and creates nothing.
 */
export function openSqliteStores(path: string, opts: { busyTimeoutMs?: number; create?: boolean } = {}): Stores {
  const db = openSqliteDatabase(path, {
    ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
    ...(opts.create !== undefined ? { create: opts.create } : {}),
  });
  // Writes on the hot paths (a token per console URL, audit rows, session rows) commit in groups.
  const writes = new GroupCommit(db);
  // The lockout state, read on every signed call, in one read transaction per turn.
  const reads = new GroupCommit(db, { begin: 'BEGIN', windowMs: 0 });
  return {
    identity: new SqliteIdentityStore(db),
    signatureFailures: new SqliteSignatureFailureStore(db, reads),
    servers: new SqliteServerStore(db),
    consoleTokens: new SqliteConsoleTokenStore(db, writes),
    audit: new SqliteAuditStore(db, writes),
    sessions: new SqliteSessionStore(db, writes),
    changes: new SqliteChangeFeedStore(db),
    keyChecks: new SqliteKeyCheckStore(db),
    serialOutput: new SqliteSerialOutputStore(db),
    recordings: new SqlRecordingStore({
      rows: (text, params) => sqlite(() => prep(db, text).all(...params) as Row[]),
      count: (text, params) => sqlite(() => prep(db, text).run(...params).changes),
    }),
    // NOTE: one node per SQLite store, so a lock in this process serialises its sessions. A CLI
    // `server check` in another process is not covered (docs/deploy.md says so).
    backendLocks: new InProcessBackendLocks(),
    // Ready means writable: a lock held by another process (or a full disk) makes writes fail.
    ping: () => sqlite(() => {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
    }),
    close: async () => {
      if (!db.open) return;
      reads.flush();
      writes.flush();
      db.close();
    },
  };
}
