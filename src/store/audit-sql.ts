/** The WHERE clause and order of an audit search, shared by the SQL adapters (placeholders differ). */
import type { AuditFilter } from '../audit/types.js';

/** A JSON array parameter as a table of `value`s: SQLite `json_each(?)`, PostgreSQL `json_array_elements_text($n::json) AS value`. */
export const JSON_ARRAY = {
  sqlite: (p: string): string => `json_each(${p})`,
  postgres: (p: string): string => `json_array_elements_text(${p}::json) AS a(value)`,
} as const;

/**
 * The conditions of `f` with `ph(n)` naming the n-th (1-based) parameter, the order, and the
 * parameters (the LIMIT is the caller's, after them).
 */
export function auditWhere(f: AuditFilter, ph: (n: number) => string, arrayOf: (param: string) => string): { where: string; order: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown): void => {
    params.push(value);
    conds.push(sql.replace('?', ph(params.length)));
  };
  const desc = f.order === 'desc';
  if (f.sinceId !== undefined || !desc) add('id > ?', f.sinceId ?? 0);
  if (f.beforeId !== undefined) add('id < ?', f.beforeId);
  if (f.serverId !== undefined) add('server_id = ?', f.serverId);
  if (f.projectId !== undefined) add('project_id = ?', f.projectId);
  if (f.projectIds !== undefined && f.domainId !== undefined) {
    // An administrator's domain: its projects' events, and those recorded with the domain alone.
    params.push(JSON.stringify(f.projectIds), f.domainId);
    conds.push(`(project_id IN (SELECT value FROM ${arrayOf(ph(params.length - 1))}) OR domain_id = ${ph(params.length)})`);
  } else if (f.projectIds !== undefined) add(`project_id IN (SELECT value FROM ${arrayOf('?')})`, JSON.stringify(f.projectIds));
  else if (f.domainId !== undefined) add('domain_id = ?', f.domainId);
  if (f.kind !== undefined) add('kind = ?', f.kind);
  if (f.target !== undefined) add('target = ?', f.target);
  if (f.actorUserId !== undefined) add('actor_user_id = ?', f.actorUserId);
  if (f.actorCredential !== undefined) add('actor_credential = ?', f.actorCredential);
  if (f.clientAddress !== undefined) add('client_address = ?', f.clientAddress);
  if (f.outcome !== undefined) add('outcome = ?', f.outcome);
  if (f.from !== undefined) add('at >= ?', f.from);
  if (f.to !== undefined) add('at < ?', f.to);
  return { where: conds.length ? ` WHERE ${conds.join(' AND ')}` : '', order: desc ? ' ORDER BY id DESC' : ' ORDER BY id', params };
}
