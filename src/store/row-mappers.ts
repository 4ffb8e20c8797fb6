/**
 * Row -> domain object mapping shared by the SQL adapters (SQLite, PostgreSQL). Both use the same
 * column names; numbers go through `Number()` because PostgreSQL's `bigint` (epoch-ms times, ids,
 * counts) arrives as a string, and JSON columns (`actions`, `detail`) are stored as JSON text in both.
 */
import type { SerialOutputRecord } from '../serial/types.js';
import type { AuditEvent } from '../audit/types.js';
import type { AccessKey, Domain, IamTokenRecord, Project, SignatureFailureRecord, User } from '../identity/types.js';
import type { ConsoleTarget, Server, ServerStatus } from '../inventory/types.js';
import type { ChangeEvent, SessionRecord } from '../sessions/types.js';
import type { KeyCheck, SealedSecret } from '../secrets/key-check.js';
import type { ConsoleTokenRecord, ConsumeResult, ServerAtConsume } from '../tokens/types.js';

/** One result row, column name -> value, as either driver returns it. */
export type Row = Record<string, unknown>;

const str = (v: unknown): string => v as string;
/** A number column (SQLite INTEGER, PostgreSQL integer or bigint-as-string). */
export const num = (v: unknown): number => Number(v);
/** A nullable text column. */
const optStr = (v: unknown): string | null => (v as string | null | undefined) ?? null;
/** A 0/1 integer column (absent: `dflt`). */
const flag = (v: unknown, dflt: boolean): boolean => (v === null || v === undefined ? dflt : Number(v) === 1);
/** A nullable number column. */
export const optNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * The optional fields that have a value (the operator plane's columns: who holds a token or a
 * session, an audit outcome, a change's actor and reason); absent ones stay absent, as rows
 * written before those columns existed read.
 */
function present<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Maps a row of the matching table. */
export function rowToDomain(r: Row): Domain {
  return { id: str(r['id']), name: str(r['name']), createdAt: num(r['created_at']) };
}
/** Maps a row of the matching table. */
export function rowToProject(r: Row): Project {
  return { id: str(r['id']), name: str(r['name']), domainId: str(r['domain_id']), createdAt: num(r['created_at']), description: optStr(r['description']) ?? '' };
}
/** Maps a row of the matching table. */
export function rowToUser(r: Row): User {
  return {
    id: str(r['id']), domainId: str(r['domain_id']), name: str(r['name']), passwordHash: str(r['password_hash']),
    actions: JSON.parse(str(r['actions'])) as string[], createdAt: num(r['created_at']),
    enabled: flag(r['enabled'], true), admin: flag(r['admin'], false), description: optStr(r['description']) ?? '',
  };
}
/** Maps a row of the matching table. */
export function rowToAccessKey(r: Row): AccessKey {
  return {
    ak: str(r['ak']), userId: str(r['user_id']), projectId: str(r['project_id']), skSealed: str(r['sk_sealed']),
    actions: JSON.parse(str(r['actions'])) as string[], createdAt: num(r['created_at']),
    status: optStr(r['status']) === 'inactive' ? 'inactive' : 'active', description: optStr(r['description']) ?? '',
    expiresAt: optNum(r['expires_at']), securityTokenHash: optStr(r['security_token_hash']), issuedBy: optStr(r['issued_by']),
  };
}
/** Maps a row of the matching table. */
export function rowToSignatureFailure(r: Row): SignatureFailureRecord {
  return { ak: str(r['ak']), address: str(r['address']), failures: num(r['failures']), lockedUntil: optNum(r['locked_until']) };
}
/** Maps a row of the matching table. */
export function rowToIamToken(r: Row): IamTokenRecord {
  return { hash: str(r['hash']), userId: str(r['user_id']), projectId: str(r['project_id']), issuedAt: num(r['issued_at']), expiresAt: num(r['expires_at']) };
}
/** The `servers` columns of a console target, in the order of {@link consoleColumnValues}. */
export const CONSOLE_COLUMNS = [
  'console_kind', 'console_host', 'console_port', 'console_auth', 'console_password_sealed',
  'console_qmp', 'console_libvirt_uri', 'console_libvirt_domain', 'console_tls_name', 'console_serial',
] as const;

/** A console target as column values (CONSOLE_COLUMNS' order); what a kind has not is null ('' and 0 for the NOT NULL host and port). */
export function consoleColumnValues(c: ConsoleTarget): unknown[] {
  const tlsName = c.tls?.serverName ?? null;
  const serial = c.serial ?? null;
  switch (c.kind) {
    case 'static': return [c.kind, c.host, c.port, c.auth, c.passwordSealed, null, null, null, tlsName, serial];
    case 'qemu-qmp': return [c.kind, c.host, c.port, c.auth, null, c.qmp, null, null, tlsName, serial];
    case 'libvirt': return [c.kind, c.host ?? '', 0, c.auth, null, null, c.uri, c.domain, tlsName, serial];
  }
}

function rowToConsoleTarget(r: Row): ConsoleTarget {
  const serial = (r['console_serial'] as string | null | undefined) ?? null;
  const t = rowToVncTarget(r);
  return serial === null ? t : { ...t, serial };
}

function rowToVncTarget(r: Row): ConsoleTarget {
  const tlsName = (r['console_tls_name'] as string | null) ?? null;
  const tls = tlsName === null ? null : { serverName: tlsName };
  const kind = (r['console_kind'] as string | null) ?? 'static';
  if (kind === 'qemu-qmp') {
    return { kind, host: str(r['console_host']), port: num(r['console_port']), qmp: str(r['console_qmp']), auth: 'one-time-password', passwordSealed: null, tls };
  }
  if (kind === 'libvirt') {
    const host = str(r['console_host']);
    return { kind, uri: str(r['console_libvirt_uri']), domain: str(r['console_libvirt_domain']), host: host === '' ? null : host, auth: 'one-time-password', passwordSealed: null, tls };
  }
  return {
    kind: 'static', host: str(r['console_host']), port: num(r['console_port']), auth: str(r['console_auth']) as 'none' | 'vnc-password',
    passwordSealed: (r['console_password_sealed'] as string | null) ?? null, tls,
  };
}

/** Maps a row of the matching table. */
export function rowToServer(r: Row): Server {
  return {
    id: str(r['id']), projectId: str(r['project_id']), name: str(r['name']), status: str(r['status']) as ServerStatus,
    availabilityZone: str(r['availability_zone']), createdAt: num(r['created_at']), updatedAt: num(r['updated_at']),
    console: rowToConsoleTarget(r),
    consoleRevision: num(r['console_revision']),
  };
}
/** Maps a row of the matching table. */
export function rowToSerialOutput(r: Row): SerialOutputRecord {
  const data = r['data'];
  return {
    serverId: str(r['server_id']), holder: str(r['holder']), heldUntil: num(r['held_until']), endOffset: num(r['end_offset']),
    data: Buffer.isBuffer(data) ? data : Buffer.from(data as Uint8Array), updatedAt: num(r['updated_at']),
  };
}
/** Maps a row of the matching table. */
export function rowToConsoleToken(r: Row): ConsoleTokenRecord {
  return {
    hash: str(r['hash']), serverId: str(r['server_id']), projectId: str(r['project_id']), kind: r['kind'] === 'serial' ? 'serial' : 'vnc', consoleRevision: num(r['console_revision']),
    issuedAt: num(r['issued_at']), expiresAt: num(r['expires_at']), consumedAt: optNum(r['consumed_at']),
    consumedBy: (r['consumed_by'] as string | null) ?? null, revokedAt: optNum(r['revoked_at']),
    revokedReason: (r['revoked_reason'] as string | null) ?? null,
    issuedBy: optStr(r['issued_by']), issuedByUser: optStr(r['issued_by_user']),
  };
}
/** Why a consume failed, from the token's row (`consumed_at`, `revoked_reason`) or its absence. */
/**
 * A consumed token's server from the columns `project_id`, `status` and `console_revision` of
 * servers, each name after `prefix`; null when there is none (status null).
 */
export function serverAtConsume(r: Row | null | undefined, prefix = ''): ServerAtConsume | null {
  const status = r?.[`${prefix}status`];
  if (!r || status === null || status === undefined) return null;
  return { projectId: str(r[`${prefix}project_id`]), status: str(status), consoleRevision: num(r[`${prefix}console_revision`]) };
}
export function consumeRefusal(r: Row | null | undefined): Exclude<ConsumeResult, { ok: true }> {
  if (!r) return { ok: false, reason: 'unknown' };
  if (r['consumed_at'] !== null && r['consumed_at'] !== undefined) return { ok: false, reason: 'used' };
  const revoked = r['revoked_reason'];
  if (typeof revoked === 'string') return { ok: false, reason: 'revoked', revokedReason: revoked };
  return { ok: false, reason: 'expired' };
}
/** Maps a row of the matching table. */
export function rowToAudit(r: Row): AuditEvent {
  return {
    id: num(r['id']), at: num(r['at']), kind: str(r['kind']) as AuditEvent['kind'], nodeId: str(r['node_id']),
    projectId: (r['project_id'] as string | null) ?? null, serverId: (r['server_id'] as string | null) ?? null,
    tokenRef: optStr(r['token_ref']), sessionId: optStr(r['session_id']),
    detail: JSON.parse(str(r['detail'])) as AuditEvent['detail'],
    actorUserId: optStr(r['actor_user_id']), actorCredential: optStr(r['actor_credential']), target: optStr(r['target']),
    requestId: optStr(r['request_id']), clientAddress: optStr(r['client_address']),
    ...present({ outcome: optStr(r['outcome']) as AuditEvent['outcome'], domainId: optStr(r['domain_id']) }),
  };
}

/** Maps a row of the matching table. */
export function rowToSession(r: Row): SessionRecord {
  return {
    id: str(r['id']), nodeId: str(r['node_id']), instanceId: str(r['instance_id']), serverId: str(r['server_id']), projectId: str(r['project_id']),
    tokenRef: str(r['token_ref']), clientAddress: str(r['client_address']), startedAt: num(r['started_at']), heartbeatAt: num(r['heartbeat_at']),
    ...present({ userId: optStr(r['user_id']), credential: optStr(r['credential']) }),
    ...(num(r['bytes_to_client'] ?? 0) + num(r['bytes_to_backend'] ?? 0) > 0
      ? { bytesToClient: num(r['bytes_to_client']), bytesToBackend: num(r['bytes_to_backend']) } : {}),
  };
}
/** Maps a row of the matching table. */
export function rowToChange(r: Row): ChangeEvent {
  return {
    id: num(r['id']), at: num(r['at']), kind: str(r['kind']) as ChangeEvent['kind'],
    serverId: (r['server_id'] as string | null) ?? null, sessionId: (r['session_id'] as string | null) ?? null,
    // Only credential revocations carry one.
    ...(optStr(r['credential']) !== null ? { credential: optStr(r['credential']) } : {}),
    ...present({ actor: optStr(r['actor']), reason: optStr(r['reason']) }),
  };
}
/** Maps a row of `master_key_checks`. */
export function rowToKeyCheck(r: Row): KeyCheck {
  return { keyId: str(r['key_id']), canary: str(r['canary_sealed']), createdAt: num(r['created_at']) };
}
/** Maps a row of the sealed-secret listing (see SEALED_SECRETS_SQL). */
export function rowToSealedSecret(r: Row): SealedSecret {
  return { aad: str(r['aad']), sealed: str(r['sealed']) };
}

/**
 * Every sealed secret with the associated data it was sealed with (identity-service: `sk:<ak>`,
 * inventory-service: `vnc:<server id>`, recording-service: `recording:<recording id>`), oldest first. Valid in both dialects; each adapter appends
 * its LIMIT placeholder.
 */
export const SEALED_SECRETS_SQL = `
SELECT aad, sealed FROM (
  SELECT 'sk:' || ak AS aad, sk_sealed AS sealed, created_at FROM access_keys
  UNION ALL
  SELECT 'vnc:' || id AS aad, console_password_sealed AS sealed, created_at FROM servers WHERE console_password_sealed IS NOT NULL
  UNION ALL
  SELECT 'recording:' || id AS aad, sealed_key AS sealed, started_at AS created_at FROM recordings
) AS sealed_secrets ORDER BY created_at, aad LIMIT`;

/** Every sealed secret with its associated data, unordered (see SEALED_SECRETS_SQL). */
const SEALED_UNION = `
  SELECT 'sk:' || ak AS aad, sk_sealed AS sealed FROM access_keys
  UNION ALL
  SELECT 'vnc:' || id AS aad, console_password_sealed AS sealed FROM servers WHERE console_password_sealed IS NOT NULL
  UNION ALL
  SELECT 'recording:' || id AS aad, sealed_key AS sealed FROM recordings`;

/**
 * A page of all sealed secrets in byte order of their associated data, after a cursor (`''` for
 * the first page): SQLite compares text byte-wise; PostgreSQL is told to (COLLATE "C").
 */
export const SEALED_SECRETS_PAGE_SQL = {
  sqlite: `SELECT aad, sealed FROM (${SEALED_UNION}) AS s WHERE aad > ? ORDER BY aad LIMIT ?`,
  postgres: `SELECT aad, sealed FROM (${SEALED_UNION}) AS s WHERE aad COLLATE "C" > $1 ORDER BY aad COLLATE "C" LIMIT $2`,
} as const;

/** Where the secret of associated data `aad` is kept: table, column, and the row's key. */
export function sealedSecretRow(aad: string): { table: 'access_keys' | 'servers' | 'recordings'; column: 'sk_sealed' | 'console_password_sealed' | 'sealed_key'; key: 'ak' | 'id'; id: string } {
  if (aad.startsWith('sk:')) return { table: 'access_keys', column: 'sk_sealed', key: 'ak', id: aad.slice(3) };
  if (aad.startsWith('vnc:')) return { table: 'servers', column: 'console_password_sealed', key: 'id', id: aad.slice(4) };
  // A recording's data key (recording-service.ts): the file stays as it is, only its key is re-sealed.
  if (aad.startsWith('recording:')) return { table: 'recordings', column: 'sealed_key', key: 'id', id: aad.slice(10) };
  throw new Error(`no sealed secret is bound to ${JSON.stringify(aad)}`);
}
