/**
 * PostgreSQL implementations of every store port, with the SQLite adapter's semantics, safe when
 * several API and proxy nodes share the database.
 */
import { SqlRecordingStore, numberedPlaceholders } from '../recording-store.js';
import type { AuditEvent, AuditFilter, AuditStore } from '../../audit/types.js';
import { createHash } from 'node:crypto';
import type { BackendLockStore } from '../../backends/types.js';
import type {
  AccessKey, AccessKeyPatch, Domain, IamTokenRecord, IdentityStore, Project, ProjectPatch, SignatureFailureOutcome, SignatureFailureRecord, SignatureFailureState,
  SignatureFailureStore, User, UserPatch,
} from '../../identity/types.js';
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
import { BatchedRead, BatchedWrite, batchedInsert, WriteGroup } from './postgres-batch.js';
import { PostgresChangeListener } from './postgres-change-listener.js';
import { PostgresKeyCheckStore } from './postgres-key-check-store.js';
import { ADVISORY_LOCKS, BACKEND_LOCK_CLASS, clientConfig, PostgresDatabase, type OpenPostgresOptions, type Sql } from './postgres-database.js';

export type { OpenPostgresOptions } from './postgres-database.js';

/** The NOTIFY channel of the change feed (per database, like every PostgreSQL channel). */
export const CHANGE_CHANNEL = 'ecs_console_changes';

const maybe = <T>(r: Row | null, map: (r: Row) => T): T | null => (r ? map(r) : null);

/**
 * Text ids sort byte-wise, as in SQLite, whatever the database's collation.
 * NOTE: the listing order is part of paging (limit/offset); it must not depend on the server's locale.
 */
const BYTEWISE = 'COLLATE "C"';

/** `UPDATE <table> SET ... WHERE <key> = $n RETURNING *` for the columns a patch sets. */
async function updateReturning(db: Sql, table: string, key: string, id: string, fields: Record<string, string | number | undefined>): Promise<Row | null> {
  const set = patchColumns(fields);
  if (set.cols.length === 0) return db.one(`SELECT * FROM ${table} WHERE ${key} = $1`, [id]);
  return db.one(`UPDATE ${table} SET ${set.cols.map((c, i) => `${c} = $${i + 1}`).join(', ')} WHERE ${key} = $${set.cols.length + 1} RETURNING *`, [...set.values, id]);
}

export class PostgresIdentityStore implements IdentityStore {
  constructor(private readonly db: PostgresDatabase) {}

  async insertDomain(d: Domain): Promise<void> {
    await this.db.count('INSERT INTO domains (id, name, created_at) VALUES ($1, $2, $3)', [d.id, d.name, d.createdAt]);
  }
  async getDomain(id: string): Promise<Domain | null> {
    return maybe(await this.db.one('SELECT * FROM domains WHERE id = $1', [id]), rowToDomain);
  }
  async getDomainByName(name: string): Promise<Domain | null> {
    return maybe(await this.db.one('SELECT * FROM domains WHERE name = $1', [name]), rowToDomain);
  }
  async insertProject(p: Project): Promise<void> {
    await this.db.count('INSERT INTO projects (id, name, domain_id, created_at, description) VALUES ($1, $2, $3, $4, $5)', [p.id, p.name, p.domainId, p.createdAt, p.description ?? '']);
  }
  async updateProject(id: string, patch: ProjectPatch): Promise<Project | null> {
    return maybe(await updateReturning(this.db, 'projects', 'id', id, { name: patch.name, description: patch.description }), rowToProject);
  }
  deleteProject(id: string): Promise<'deleted' | 'missing' | 'in-use'> {
    return this.db.transaction(async (tx) => {
      // The row lock keeps a server or key from being added to the project meanwhile (their foreign keys wait for it).
      if (!(await tx.one('SELECT 1 FROM projects WHERE id = $1 FOR UPDATE', [id]))) return 'missing';
      if (await tx.one('SELECT 1 FROM servers WHERE project_id = $1 UNION ALL SELECT 1 FROM access_keys WHERE project_id = $1 LIMIT 1', [id])) return 'in-use';
      await tx.count('DELETE FROM iam_tokens WHERE project_id = $1', [id]);
      await tx.count('DELETE FROM projects WHERE id = $1', [id]);
      return 'deleted';
    });
  }
  async getProject(id: string): Promise<Project | null> {
    return maybe(await this.db.one('SELECT * FROM projects WHERE id = $1', [id]), rowToProject);
  }
  async listProjects(): Promise<Project[]> {
    return (await this.db.rows(`SELECT * FROM projects ORDER BY created_at, id ${BYTEWISE}`)).map(rowToProject);
  }
  async insertUser(u: User): Promise<void> {
    await this.db.count('INSERT INTO users (id, domain_id, name, password_hash, actions, created_at, enabled, admin, description) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      [u.id, u.domainId, u.name, u.passwordHash, JSON.stringify(u.actions), u.createdAt, u.enabled === false ? 0 : 1, u.admin ? 1 : 0, u.description ?? '']);
  }
  async getUser(id: string): Promise<User | null> {
    return maybe(await this.db.one('SELECT * FROM users WHERE id = $1', [id]), rowToUser);
  }
  async getUserByName(domainId: string, name: string): Promise<User | null> {
    return maybe(await this.db.one('SELECT * FROM users WHERE domain_id = $1 AND name = $2', [domainId, name]), rowToUser);
  }
  async listUsers(domainId: string): Promise<User[]> {
    return (await this.db.rows(`SELECT * FROM users WHERE domain_id = $1 ORDER BY created_at, id ${BYTEWISE}`, [domainId])).map(rowToUser);
  }
  async updateUser(id: string, patch: UserPatch): Promise<User | null> {
    return maybe(await updateReturning(this.db, 'users', 'id', id, {
      name: patch.name, description: patch.description, password_hash: patch.passwordHash,
      enabled: patch.enabled === undefined ? undefined : patch.enabled ? 1 : 0, admin: patch.admin === undefined ? undefined : patch.admin ? 1 : 0,
    }), rowToUser);
  }
  deleteUser(id: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.count('DELETE FROM access_keys WHERE user_id = $1', [id]);
      await tx.count('DELETE FROM iam_tokens WHERE user_id = $1', [id]);
      return (await tx.count('DELETE FROM users WHERE id = $1', [id])) > 0;
    });
  }
  async insertAccessKey(k: AccessKey): Promise<void> {
    await this.db.count(
      `INSERT INTO access_keys (${ACCESS_KEY_COLUMNS.join(', ')}) VALUES (${ACCESS_KEY_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
      accessKeyValues(k),
    );
  }
  insertPermanentAccessKey(k: AccessKey, max: number): Promise<boolean> {
    // NOTE: the user's row lock serializes creations for one user across nodes: the count a
    // creation reads includes every key committed before it (READ COMMITTED re-reads after the wait).
    return this.db.transaction(async (tx) => {
      if (!(await tx.one('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [k.userId]))) return false;
      const n = num((await tx.one('SELECT COUNT(*) AS n FROM access_keys WHERE user_id = $1 AND expires_at IS NULL', [k.userId]))?.['n']);
      if (n >= max) return false;
      await tx.count(
        `INSERT INTO access_keys (${ACCESS_KEY_COLUMNS.join(', ')}) VALUES (${ACCESS_KEY_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
        accessKeyValues(k),
      );
      return true;
    });
  }
  async updateAccessKey(ak: string, patch: AccessKeyPatch): Promise<AccessKey | null> {
    return maybe(await updateReturning(this.db, 'access_keys', 'ak', ak, { status: patch.status, description: patch.description }), rowToAccessKey);
  }
  purgeTemporaryAccessKeys(now: number): Promise<number> {
    return this.db.count('DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at <= $1', [now]);
  }
  async deleteUserIamTokens(userId: string, except?: string): Promise<string[]> {
    return (await this.db.rows('DELETE FROM iam_tokens WHERE user_id = $1 AND hash <> $2 RETURNING hash', [userId, except ?? ''])).map((r) => r['hash'] as string);
  }
  async getAccessKey(ak: string): Promise<AccessKey | null> {
    return maybe(await this.db.one('SELECT * FROM access_keys WHERE ak = $1', [ak]), rowToAccessKey);
  }
  async listAccessKeys(userId: string): Promise<AccessKey[]> {
    return (await this.db.rows(`SELECT * FROM access_keys WHERE user_id = $1 ORDER BY created_at, ak ${BYTEWISE}`, [userId])).map(rowToAccessKey);
  }
  async deleteAccessKey(ak: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM access_keys WHERE ak = $1', [ak])) > 0;
  }
  async insertIamToken(t: IamTokenRecord): Promise<void> {
    await this.db.count('INSERT INTO iam_tokens (hash, user_id, project_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [t.hash, t.userId, t.projectId, t.issuedAt, t.expiresAt]);
  }
  async getIamToken(hash: string): Promise<IamTokenRecord | null> {
    return maybe(await this.db.one('SELECT * FROM iam_tokens WHERE hash = $1', [hash]), rowToIamToken);
  }
  async deleteIamToken(hash: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM iam_tokens WHERE hash = $1', [hash])) > 0;
  }
  purgeIamTokens(now: number): Promise<number> {
    // Idempotent: nodes purging at once each delete what is left; a row is deleted once.
    return this.db.count('DELETE FROM iam_tokens WHERE expires_at <= $1', [now]);
  }
}

const PG_RECORD_FAILURE = recordSignatureFailureSql({ ak: '$1', address: '$2', now: '$3::bigint', threshold: '$4::integer', until: '$5::bigint' });

type PairAt = { readonly ak: string; readonly address: string; readonly now: number };

export class PostgresSignatureFailureStore implements SignatureFailureStore {
  /** Every signed call reads its pair's state: the reads of one turn go in one statement. */
  private readonly states: BatchedRead<PairAt, SignatureFailureState | null>;

  constructor(private readonly db: Sql) {
    this.states = new BatchedRead(async (keys) => {
      if (keys.length === 1) {
        const k = keys[0]!;
        const r = await this.db.one('SELECT failures, locked_until FROM signature_failures WHERE ak = $1 AND address = $2 AND expires_at > $3', [k.ak, k.address, k.now]);
        return [r ? { failures: num(r['failures']), lockedUntil: optNum(r['locked_until']) } : null];
      }
      const rows = await this.db.rows(
        'SELECT ak, address, failures, locked_until, expires_at FROM signature_failures WHERE (ak, address) IN (SELECT * FROM unnest($1::text[], $2::text[]))',
        [keys.map((k) => k.ak), keys.map((k) => k.address)],
      );
      const byPair = new Map(rows.map((r) => [`${String(r['ak'])}\0${String(r['address'])}`, r]));
      return keys.map((k) => {
        const r = byPair.get(`${k.ak}\0${k.address}`);
        return r && num(r['expires_at']) > k.now ? { failures: num(r['failures']), lockedUntil: optNum(r['locked_until']) } : null;
      });
    });
  }

  getSignatureFailures(ak: string, address: string, now: number): Promise<SignatureFailureState | null> {
    return this.states.read({ ak, address, now });
  }
  async recordSignatureFailure(ak: string, address: string, now: number, threshold: number, lockMs: number): Promise<SignatureFailureOutcome> {
    // NOTE: one statement. Concurrent failures of a pair on several nodes queue on the row lock and
    // each re-reads the row the previous one wrote (ON CONFLICT DO UPDATE), so every one is counted;
    // two first failures at once: one inserts, the other waits for it and updates.
    const r = await this.db.one(PG_RECORD_FAILURE, [ak, address, now, threshold, now + lockMs]);
    return signatureFailureOutcome(r!, now);
  }
  async clearSignatureFailures(ak: string, address: string | null): Promise<SignatureFailureRecord[]> {
    const rows = address === null
      ? await this.db.rows('DELETE FROM signature_failures WHERE ak = $1 RETURNING *', [ak])
      : await this.db.rows('DELETE FROM signature_failures WHERE ak = $1 AND address = $2 RETURNING *', [ak, address]);
    return rows.map(rowToSignatureFailure).sort((a, b) => (a.address < b.address ? -1 : 1));
  }
  purgeSignatureFailures(now: number): Promise<number> {
    return this.db.count('DELETE FROM signature_failures WHERE expires_at <= $1', [now]);
  }
  trimSignatureFailures(maxRows: number): Promise<number> {
    // Nodes trimming at once delete overlapping rows: harmless, a row is deleted once.
    return this.db.count(
      `DELETE FROM signature_failures WHERE (ak, address) IN (
         SELECT ak, address FROM signature_failures ORDER BY expires_at DESC OFFSET $1)`,
      [maxRows],
    );
  }
}

/** WHERE clause of a server filter, its parameters numbered from $1. */
function serverWhere(f: ServerFilter): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (column: string, value: unknown): void => {
    params.push(value);
    conds.push(`${column} = $${params.length}`);
  };
  if (f.projectId !== undefined) add('project_id', f.projectId);
  if (f.name !== undefined) add('name', f.name);
  if (f.status !== undefined) add('status', f.status);
  if (f.availabilityZone !== undefined) add('availability_zone', f.availabilityZone);
  if (f.projectIds !== undefined) {
    params.push([...f.projectIds]);
    conds.push(`project_id = ANY($${params.length}::text[])`);
  }
  if (f.afterId !== undefined) {
    params.push(f.afterId);
    conds.push(`(created_at, id ${BYTEWISE}) > (SELECT created_at, id ${BYTEWISE} FROM servers WHERE id = $${params.length})`);
  }
  return { sql: conds.length ? ' WHERE ' + conds.join(' AND ') : '', params };
}

export class PostgresServerStore implements ServerStore {
  constructor(private readonly db: PostgresDatabase) {}

  async insertServer(s: Server): Promise<void> {
    const values = [s.id, s.projectId, s.name, s.status, s.availabilityZone, s.createdAt, s.updatedAt, ...consoleColumnValues(s.console), s.consoleRevision];
    await this.db.count(
      `INSERT INTO servers (id, project_id, name, status, availability_zone, created_at, updated_at,
         ${CONSOLE_COLUMNS.join(', ')}, console_revision)
       VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`,
      values,
    );
  }
  async getServer(id: string): Promise<Server | null> {
    return maybe(await this.db.one('SELECT * FROM servers WHERE id = $1', [id]), rowToServer);
  }
  async listServers(f: ServerFilter): Promise<Server[]> {
    const w = serverWhere(f);
    const n = w.params.length;
    // LIMIT NULL is LIMIT ALL (SQLite's LIMIT -1).
    const rows = await this.db.rows(`SELECT * FROM servers${w.sql} ORDER BY created_at, id ${BYTEWISE} LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...w.params, f.limit ?? null, f.offset ?? 0]);
    return rows.map(rowToServer);
  }
  async countServers(f: ServerFilter): Promise<number> {
    const w = serverWhere(f);
    return num((await this.db.one(`SELECT COUNT(*) AS n FROM servers${w.sql}`, w.params))?.['n']);
  }
  updateServer(id: string, patch: ServerPatch, now: number): Promise<{ before: Server; after: Server } | null> {
    // NOTE: FOR UPDATE holds the row until commit: two nodes changing the console target at once
    // bump the revision twice (each sees the other's result), never once.
    return this.db.transaction(async (tx) => {
      const r = await tx.one('SELECT * FROM servers WHERE id = $1 FOR UPDATE', [id]);
      if (!r) return null;
      const before = rowToServer(r);
      const after = applyServerPatch(before, patch, now);
      const sets = ['name', 'status', 'availability_zone', 'updated_at', ...CONSOLE_COLUMNS, 'console_revision'];
      await tx.count(
        `UPDATE servers SET ${sets.map((c, i) => `${c} = $${i + 1}`).join(', ')} WHERE id = $${sets.length + 1}`,
        [after.name, after.status, after.availabilityZone, now, ...consoleColumnValues(after.console), after.consoleRevision, id],
      );
      return { before, after };
    });
  }
  async deleteServer(id: string): Promise<Server | null> {
    return maybe(await this.db.one('DELETE FROM servers WHERE id = $1 RETURNING *', [id]), rowToServer);
  }
  syncServers(scope: ServerSyncScope, plan: (current: Server[]) => ServerSyncPlan, opts: { now: number; apply: boolean; actor: string | null }): Promise<ServerSyncPlan> {
    // NOTE: FOR UPDATE holds the scope's rows until commit: two syncs of one scope apply one after
    // the other, each planned against what the other left.
    return this.db.transaction(async (tx) => {
      const rows = scope.availabilityZone === undefined
        ? await tx.rows('SELECT * FROM servers WHERE project_id = $1 FOR UPDATE', [scope.projectId])
        : await tx.rows('SELECT * FROM servers WHERE project_id = $1 AND availability_zone = $2 FOR UPDATE', [scope.projectId, scope.availabilityZone]);
      const p = plan(rows.map(rowToServer));
      if (!opts.apply) return p;
      const cols = ['id', 'project_id', 'name', 'status', 'availability_zone', 'created_at', 'updated_at', ...CONSOLE_COLUMNS, 'console_revision'];
      const types = cols.map((c) => (c === 'created_at' || c === 'updated_at' ? 'bigint' : c === 'console_port' || c === 'console_revision' ? 'integer' : 'text'));
      const columnsOf = (list: readonly Server[]): unknown[][] => {
        const out: unknown[][] = cols.map(() => []);
        for (const s of list) {
          [s.id, s.projectId, s.name, s.status, s.availabilityZone, s.createdAt, s.updatedAt, ...consoleColumnValues(s.console), s.consoleRevision]
            .forEach((v, i) => out[i]!.push(v));
        }
        return out;
      };
      const unnest = types.map((t, i) => `$${i + 1}::${t}[]`).join(', ');
      for (const chunk of chunks(p.create, SYNC_CHUNK)) {
        await tx.count(`INSERT INTO servers (${cols.join(', ')}) SELECT * FROM unnest(${unnest})`, columnsOf(chunk));
      }
      for (const chunk of chunks(p.update.map((u) => u.after), SYNC_CHUNK)) {
        await tx.count(
          `UPDATE servers AS s SET ${cols.slice(2).map((c) => `${c} = u.${c}`).join(', ')}
           FROM unnest(${unnest}) AS u(${cols.join(', ')}) WHERE s.id = u.id`,
          columnsOf(chunk),
        );
      }
      if (p.delete.length > 0) await tx.count('DELETE FROM servers WHERE id = ANY($1::text[])', [p.delete.map((s) => s.id)]);
      if (p.ended.length > 0) {
        await tx.count(
          `UPDATE console_tokens AS t SET revoked_at = $1, revoked_reason = e.reason
           FROM unnest($2::text[], $3::text[]) AS e(server_id, reason) WHERE t.server_id = e.server_id AND t.revoked_at IS NULL`,
          [opts.now, p.ended.map((e) => e.serverId), p.ended.map((e) => e.reason)],
        );
        // The change feed's order rule (see PostgresChangeFeedStore.appendChange): ids drawn under its lock.
        await tx.one('SELECT pg_advisory_xact_lock($1, $2)', [...ADVISORY_LOCKS.changeAppend]);
        await tx.count(
          `INSERT INTO change_events (at, kind, server_id, session_id, actor, reason)
           SELECT $1, e.kind, e.server_id, NULL, $2, NULL FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS e(server_id, kind, n) ORDER BY e.n`,
          [opts.now, opts.actor, p.ended.map((e) => e.serverId), p.ended.map((e) => e.reason)],
        );
        await tx.one(`SELECT pg_notify('${CHANGE_CHANNEL}', 'sync')`);
      }
      return p;
    });
  }
}

/** Rows per statement of a bulk sync (PostgreSQL allows 65,535 parameters; arrays are one each). */
const SYNC_CHUNK = 5000;

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * The consumed token's server, read in the consumption's own statement (its snapshot): the proxy's
 * re-check without a round trip of its own. A stop committed before the statement is seen; one
 * committed after it is on the change feed, which closes the session (its token is older).
 */
const SERVER_AT_CONSUME = ['project_id', 'status', 'console_revision']
  .map((c) => `(SELECT s.${c} FROM servers s WHERE s.id = server_id) AS srv_${c}`).join(', ');

export class PostgresConsoleTokenStore implements ConsoleTokenStore {
  /** Tokens issued during one turn go in one statement (group commit, see postgres-batch.ts). */
  private readonly inserts: BatchedWrite<ConsoleTokenRecord>;

  constructor(private readonly db: Sql, group?: WriteGroup) {
    this.inserts = batchedInsert(db, 'console_tokens', [
      ['hash', 'text'], ['server_id', 'text'], ['project_id', 'text'], ['kind', 'text'], ['console_revision', 'integer'], ['issued_at', 'bigint'],
      ['expires_at', 'bigint'], ['consumed_at', 'bigint'], ['consumed_by', 'text'], ['revoked_at', 'bigint'], ['revoked_reason', 'text'],
      ['issued_by', 'text'], ['issued_by_user', 'text'],
    ], (t) => [t.hash, t.serverId, t.projectId, t.kind ?? 'vnc', t.consoleRevision, t.issuedAt, t.expiresAt, t.consumedAt, t.consumedBy, t.revokedAt,
      t.revokedReason, t.issuedBy ?? null, t.issuedByUser ?? null], group);
  }

  insertConsoleToken(t: ConsoleTokenRecord): Promise<void> {
    return this.inserts.write(t);
  }
  async consumeConsoleToken(hash: string, now: number, nodeId: string): Promise<ConsumeResult> {
    const won = await this.consumes.read({ hash, now, nodeId });
    if (won) return { ok: true, token: rowToConsoleToken(won), server: serverAtConsume(won, 'srv_') };
    return consumeRefusal(await this.db.one('SELECT consumed_at, revoked_reason FROM console_tokens WHERE hash = $1', [hash]));
  }

  /**
   * The consumptions asked during one turn (or while the previous one ran), in one UPDATE (one commit): the row each one won, or
   * null. NOTE: exactly once across connections and nodes: concurrent UPDATEs of a row queue on
   * its lock, and each loser re-checks `consumed_at IS NULL` against the winner's committed row.
   * A token asked twice in one batch is updated once; only its first asker gets the row.
   */
  private readonly consumes = new BatchedRead<{ hash: string; now: number; nodeId: string }, Row | null>(async (keys) => {
    if (keys.length === 1) {
      const k = keys[0]!;
      return [await this.db.one(
        `UPDATE console_tokens SET consumed_at = $2, consumed_by = $3
         WHERE hash = $1 AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > $2 RETURNING *, ${SERVER_AT_CONSUME}`,
        [k.hash, k.now, k.nodeId],
      )];
    }
    const rows = await this.db.rows(
      `UPDATE console_tokens AS t SET consumed_at = v.now, consumed_by = v.node
       FROM (SELECT DISTINCT ON (hash) hash, now, node FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(hash, now, node)) AS v
       WHERE t.hash = v.hash AND t.consumed_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > v.now RETURNING t.*, ${SERVER_AT_CONSUME}`,
      [keys.map((k) => k.hash), keys.map((k) => k.now), keys.map((k) => k.nodeId)],
    );
    const won = new Map(rows.map((r) => [String(r['hash']), r]));
    return keys.map((k) => {
      const r = won.get(k.hash);
      won.delete(k.hash);
      return r ?? null;
    });
  });
  async releaseConsoleToken(hash: string, consumedAt: number, nodeId: string): Promise<boolean> {
    return (await this.db.count(
      'UPDATE console_tokens SET consumed_at = NULL, consumed_by = NULL WHERE hash = $1 AND consumed_at = $2 AND consumed_by = $3',
      [hash, consumedAt, nodeId],
    )) > 0;
  }
  async getConsoleToken(hash: string): Promise<ConsoleTokenRecord | null> {
    return maybe(await this.reads.read(hash), rowToConsoleToken);
  }

  /** Every console setup reads its token first (the proxy's peek): the reads asked meanwhile go in one statement. */
  private readonly reads = new BatchedRead<string, Row | null>(async (hashes) => {
    if (hashes.length === 1) return [await this.db.one('SELECT * FROM console_tokens WHERE hash = $1', [hashes[0]])];
    const rows = await this.db.rows('SELECT * FROM console_tokens WHERE hash = ANY($1::text[])', [hashes]);
    const byHash = new Map(rows.map((r) => [String(r['hash']), r]));
    return hashes.map((h) => byHash.get(h) ?? null);
  });
  revokeIssuedConsoleTokens(by: IssuedBy, reason: RevocationReason, now: number): Promise<number> {
    // Both through console_tokens_issuer (issued_by_user, issued_by).
    return 'issuedBy' in by
      ? this.db.count('UPDATE console_tokens SET revoked_at = $1, revoked_reason = $2 WHERE issued_by_user = $3 AND issued_by = $4 AND revoked_at IS NULL AND consumed_at IS NULL', [now, reason, by.userId, by.issuedBy])
      : this.db.count('UPDATE console_tokens SET revoked_at = $1, revoked_reason = $2 WHERE issued_by_user = $3 AND revoked_at IS NULL AND consumed_at IS NULL', [now, reason, by.userId]);
  }
  revokeServerConsoleTokens(serverId: string, reason: RevocationReason, now: number): Promise<number> {
    return this.db.count('UPDATE console_tokens SET revoked_at = $2, revoked_reason = $3 WHERE server_id = $1 AND revoked_at IS NULL', [serverId, now, reason]);
  }
  purgeConsoleTokens(before: number): Promise<number> {
    return this.db.count('DELETE FROM console_tokens WHERE expires_at <= $1', [before]);
  }
}

export class PostgresAuditStore implements AuditStore {
  /** Audit rows of one turn go in one statement, in the order they were recorded (group commit). */
  private readonly inserts: BatchedWrite<AuditEvent>;

  constructor(private readonly db: Sql, group?: WriteGroup) {
    this.inserts = batchedInsert(db, 'audit_events', [
      ['at', 'bigint'], ['kind', 'text'], ['node_id', 'text'], ['project_id', 'text'], ['server_id', 'text'], ['token_ref', 'text'], ['session_id', 'text'],
      ['detail', 'text'], ['actor_user_id', 'text'], ['actor_credential', 'text'], ['target', 'text'], ['request_id', 'text'], ['client_address', 'text'], ['outcome', 'text'], ['domain_id', 'text'],
    ], (e) => [e.at, e.kind, e.nodeId, e.projectId, e.serverId, e.tokenRef, e.sessionId, JSON.stringify(e.detail),
      e.actorUserId ?? null, e.actorCredential ?? null, e.target ?? null, e.requestId ?? null, e.clientAddress ?? null, e.outcome ?? null, e.domainId ?? null], group);
  }

  appendAudit(e: AuditEvent): Promise<void> {
    return this.inserts.write(e);
  }
  async listAudit(f: AuditFilter): Promise<AuditEvent[]> {
    const w = auditWhere(f, (n) => `$${n}`, JSON_ARRAY.postgres);
    const rows = await this.db.rows(`SELECT * FROM audit_events${w.where}${w.order} LIMIT $${w.params.length + 1}`, [...w.params, f.limit ?? 1000]);
    return rows.map(rowToAudit);
  }
  purgeAudit(before: number): Promise<number> {
    return this.db.count('DELETE FROM audit_events WHERE at < $1', [before]);
  }
}

/** Columns of a session row, in the order of the parameters of UPSERT_SESSIONS. */
const SESSION_COLUMNS = 'id, node_id, instance_id, server_id, project_id, token_ref, client_address, started_at, heartbeat_at, user_id, credential, bytes_to_client, bytes_to_backend';

/** Types of the columns of a session row (SESSION_COLUMNS' order). */
const SESSION_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'bigint', 'text', 'text', 'bigint', 'bigint'];

/**
 * Writes session rows given as one array per column, parameters numbered from `$first`; rows with
 * the same id (a sync wrote them first) are replaced.
 */
const upsertSessions = (first: number): string =>
  `INSERT INTO console_sessions (${SESSION_COLUMNS})
   SELECT * FROM unnest(${SESSION_TYPES.map((t, i) => `$${i + first}::${t}[]`).join(', ')})
   ON CONFLICT (id) DO UPDATE SET node_id = EXCLUDED.node_id, instance_id = EXCLUDED.instance_id, heartbeat_at = EXCLUDED.heartbeat_at,
     bytes_to_client = EXCLUDED.bytes_to_client, bytes_to_backend = EXCLUDED.bytes_to_backend`;
const UPSERT_SESSIONS = upsertSessions(1);
const deleteSessions = (first: number): string => `DELETE FROM console_sessions WHERE id = ANY($${first}::text[])`;

function sessionColumns(list: readonly SessionRecord[]): unknown[][] {
  return [
    list.map((s) => s.id), list.map((s) => s.nodeId), list.map((s) => s.instanceId), list.map((s) => s.serverId),
    list.map((s) => s.projectId), list.map((s) => s.tokenRef), list.map((s) => s.clientAddress),
    list.map((s) => s.startedAt), list.map((s) => s.heartbeatAt),
    list.map((s) => s.userId ?? null), list.map((s) => s.credential ?? null), list.map((s) => s.bytesToClient ?? 0), list.map((s) => s.bytesToBackend ?? 0),
  ];
}

export class PostgresSessionStore implements SessionStore {
  /**
   * A session's row is written when it starts and deleted when it ends: those asked meanwhile go in
   * one statement, with the other stores' busy writes (WriteGroup); the caller, session-records.ts,
   * orders the writes of one session, so a row's insert and delete never meet in one statement.
   */
  private readonly inserts: BatchedWrite<SessionRecord>;
  private readonly deletes: BatchedWrite<string>;

  constructor(private readonly db: PostgresDatabase, group?: WriteGroup) {
    this.inserts = new BatchedWrite((rows) => db.count(UPSERT_SESSIONS, sessionColumns(rows)), (row) => db.count(UPSERT_SESSIONS, sessionColumns([row])),
      group ? { group, sql: (rows, first) => ({ text: upsertSessions(first), params: sessionColumns(rows) }) } : undefined);
    this.deletes = new BatchedWrite((ids) => db.count(deleteSessions(1), [ids]), (id) => db.count('DELETE FROM console_sessions WHERE id = $1', [id]),
      group ? { group, sql: (ids, first) => ({ text: deleteSessions(first), params: [ids] }) } : undefined);
  }

  insertSession(s: SessionRecord): Promise<void> {
    return this.inserts.write(s);
  }
  deleteSession(id: string): Promise<void> {
    return this.deletes.write(id);
  }
  syncSessions(owner: SessionOwner, live: readonly SessionRecord[], now: number, replacePredecessors: boolean): Promise<number> {
    // One transaction: `sessions list` never sees the node's rows half replaced.
    return this.db.transaction(async (tx) => {
      if (live.length > 0) await tx.count(UPSERT_SESSIONS, sessionColumns(live.map((s) => ({ ...s, heartbeatAt: now }))));
      let deleted = await tx.count(
        'DELETE FROM console_sessions WHERE node_id = $1 AND instance_id = $2 AND NOT (id = ANY($3::text[]))',
        [owner.nodeId, owner.instanceId, live.map((s) => s.id)],
      );
      if (replacePredecessors) {
        deleted += await tx.count('DELETE FROM console_sessions WHERE node_id = $1 AND instance_id <> $2', [owner.nodeId, owner.instanceId]);
      }
      return deleted;
    });
  }
  async touchSessions(owner: SessionOwner, now: number, traffic: readonly SessionTraffic[] = []): Promise<number> {
    if (traffic.length > 0) {
      await this.db.count(
        `UPDATE console_sessions AS s SET bytes_to_client = t.c, bytes_to_backend = t.b
         FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS t(id, c, b) WHERE s.id = t.id AND s.node_id = $1 AND s.instance_id = $2`,
        [owner.nodeId, owner.instanceId, traffic.map((t) => t.id), traffic.map((t) => t.bytesToClient), traffic.map((t) => t.bytesToBackend)],
      );
    }
    return this.db.count('UPDATE console_sessions SET heartbeat_at = $3 WHERE node_id = $1 AND instance_id = $2', [owner.nodeId, owner.instanceId, now]);
  }
  async listSessions(f: { serverId?: string; freshSince: number }): Promise<SessionRecord[]> {
    const rows = f.serverId !== undefined
      ? await this.db.rows('SELECT * FROM console_sessions WHERE server_id = $1 AND heartbeat_at >= $2 ORDER BY started_at', [f.serverId, f.freshSince])
      : await this.db.rows('SELECT * FROM console_sessions WHERE heartbeat_at >= $1 ORDER BY started_at', [f.freshSince]);
    return rows.map(rowToSession);
  }
  async getSession(id: string): Promise<SessionRecord | null> {
    return maybe(await this.db.one('SELECT * FROM console_sessions WHERE id = $1', [id]), rowToSession);
  }
  purgeStaleSessions(before: number): Promise<number> {
    return this.db.count('DELETE FROM console_sessions WHERE heartbeat_at < $1', [before]);
  }
}

export class PostgresChangeFeedStore implements ChangeFeedStore {
  constructor(private readonly db: PostgresDatabase, private readonly listener: PostgresChangeListener) {}

  appendChange(e: Omit<ChangeEvent, 'id'>): Promise<number> {
    // NOTE: appends are serialized by a transaction-level advisory lock taken before the id is
    // drawn, so ids become visible in increasing order. Without it, a node could draw id 10, another
    // draw 11 and commit first, and a follower that read 11 would never look back for 10 (a lost
    // "server stopped"). Appends are rare (state changes, session kills), so the queue is short.
    // The NOTIFY is in the same transaction: delivered at commit, and only if the row commits, so a
    // woken follower always finds the row.
    return this.db.transaction(async (tx) => {
      await tx.one('SELECT pg_advisory_xact_lock($1, $2)', [...ADVISORY_LOCKS.changeAppend]);
      const r = await tx.one(
        `WITH ins AS (INSERT INTO change_events (at, kind, server_id, session_id, credential, actor, reason) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id)
         SELECT id, pg_notify('${CHANGE_CHANNEL}', id::text) FROM ins`,
        [e.at, e.kind, e.serverId, e.sessionId, e.credential ?? null, e.actor ?? null, e.reason ?? null],
      );
      return num(r?.['id']);
    });
  }
  async changesSince(afterId: number, limit: number): Promise<ChangeEvent[]> {
    return (await this.db.rows('SELECT * FROM change_events WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit])).map(rowToChange);
  }
  async latestChangeId(): Promise<number> {
    return num((await this.db.one('SELECT COALESCE(MAX(id), 0) AS id FROM change_events'))?.['id']);
  }
  purgeChanges(before: number): Promise<number> {
    return this.db.count('DELETE FROM change_events WHERE at < $1 AND id < (SELECT max(id) FROM change_events)', [before]);
  }
  /** Calls `onAppend` soon after any node appends, and once after each listener (re)connection; `onLost` when it drops. */
  watch(onAppend: () => void, onLost?: () => void): () => void {
    return this.listener.subscribe(onAppend, onLost);
  }
}

/** Tables that API and proxy nodes write (readiness checks each can be written now). */
const WRITTEN_TABLES = ['signature_failures', 'iam_tokens', 'servers', 'console_tokens', 'audit_events', 'console_sessions', 'change_events', 'serial_output'];
export class PostgresSerialOutputStore implements SerialOutputStore {
  constructor(private readonly db: Sql) {}

  async claimSerialPort(serverId: string, holder: string, now: number, heldUntil: number): Promise<boolean> {
    return (await this.db.count(
      `INSERT INTO serial_output (server_id, holder, held_until, end_offset, data, updated_at) VALUES ($1, $2, $3, 0, '\\x', $4)
       ON CONFLICT (server_id) DO UPDATE SET holder = EXCLUDED.holder, held_until = EXCLUDED.held_until
       WHERE serial_output.holder = EXCLUDED.holder OR serial_output.held_until <= $4`,
      [serverId, holder, heldUntil, now],
    )) === 1;
  }
  async saveSerialOutput(serverId: string, holder: string, o: { endOffset: number; data: Buffer; now: number; heldUntil: number }): Promise<boolean> {
    return (await this.db.count('UPDATE serial_output SET end_offset = $1, data = $2, updated_at = $3, held_until = $4 WHERE server_id = $5 AND holder = $6',
      [o.endOffset, o.data, o.now, o.heldUntil, serverId, holder])) === 1;
  }
  async releaseSerialPort(serverId: string, holder: string): Promise<void> {
    await this.db.count('UPDATE serial_output SET held_until = 0 WHERE server_id = $1 AND holder = $2', [serverId, holder]);
  }
  async getSerialOutput(serverId: string): Promise<SerialOutputRecord | null> {
    return maybe(await this.db.one('SELECT * FROM serial_output WHERE server_id = $1', [serverId]), rowToSerialOutput);
  }
  async deleteSerialOutput(serverId: string): Promise<void> {
    await this.db.count('DELETE FROM serial_output WHERE server_id = $1', [serverId]);
  }
}

/** Longest wait of the readiness probe for a table's lock. */
const READY_LOCK_WAIT_MS = 1000;

/**
 * BackendLockStore of a fleet: a PostgreSQL advisory lock per key, so that proxy nodes take turns.
 * Waiters of this process queue in a mutex first: a node holds at most one pooled connection per
 * locked key, however many of its sessions wait.
 */
export class PostgresBackendLocks implements BackendLockStore {
  private readonly local = new KeyedMutex();
  constructor(private readonly db: PostgresDatabase, private readonly pollMs = 25) {}
  withLock<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const objId = createHash('sha256').update(key, 'utf8').digest().readInt32BE(0);
    return this.local.run(key, signal, () => this.db.withAdvisoryLock(BACKEND_LOCK_CLASS, objId, signal, this.pollMs, fn));
  }
}

/**
 * Opens a pool on the PostgreSQL database at `url` (`postgres://` or `postgresql://`), applies
 * pending migrations and returns every store port over it. Rejects with StoreUnavailableError when
 * the database cannot be reached or its schema is newer than this program, and with
 * StoreMissingError when `create: false` and the database holds no ecs-console schema.
 */
export async function openPostgresStores(url: string, opts: OpenPostgresOptions = {}): Promise<Stores> {
  const db = await PostgresDatabase.open(url, opts);
  const s = db.settings;
  const listener = new PostgresChangeListener(
    clientConfig(url, s, { application_name: `${s.applicationName}-listener` }),
    CHANGE_CHANNEL,
    { healthCheckMs: s.listenHealthCheckMs, retryMinMs: s.listenRetryMinMs, retryMaxMs: s.listenRetryMaxMs, endWaitMs: s.connectTimeoutMs },
    s.log,
  );
  // The busy writes of every store (tokens, audit rows, session rows) go in one statement per round trip.
  const writes = new WriteGroup(db);
  return {
    identity: new PostgresIdentityStore(db),
    signatureFailures: new PostgresSignatureFailureStore(db),
    servers: new PostgresServerStore(db),
    consoleTokens: new PostgresConsoleTokenStore(db, writes),
    audit: new PostgresAuditStore(db, writes),
    sessions: new PostgresSessionStore(db, writes),
    changes: new PostgresChangeFeedStore(db, listener),
    keyChecks: new PostgresKeyCheckStore(db),
    serialOutput: new PostgresSerialOutputStore(db),
    recordings: new SqlRecordingStore({
      rows: (text, params) => db.rows(numberedPlaceholders(text), params),
      count: (text, params) => db.count(numberedPlaceholders(text), params),
    }),
    backendLocks: new PostgresBackendLocks(db),
    ping: () => db.transaction(async (tx) => {
      // NOTE: readiness is "can write now", not "answers SELECT 1": a table another session holds
      // locked makes every write wait, then fail. Take the lock a write takes on every table the
      // nodes write, without writing, waiting at most READY_LOCK_WAIT_MS.
      await tx.count(`SET LOCAL lock_timeout = ${READY_LOCK_WAIT_MS}`);
      await tx.count(`LOCK TABLE ${WRITTEN_TABLES.join(', ')} IN ROW EXCLUSIVE MODE`);
    }),
    close: async () => {
      await listener.close();
      await db.close();
    },
  };
}
