/** Column lists of the identity tables shared by the SQL adapters (SQLite, PostgreSQL). */
import type { AccessKey } from '../identity/types.js';

/** The `access_keys` columns an insert writes, in the order of {@link accessKeyValues}. */
export const ACCESS_KEY_COLUMNS = [
  'ak', 'user_id', 'project_id', 'sk_sealed', 'actions', 'created_at', 'status', 'description', 'expires_at', 'security_token_hash', 'issued_by',
] as const;

/** A key as column values (ACCESS_KEY_COLUMNS' order). */
export function accessKeyValues(k: AccessKey): unknown[] {
  return [
    k.ak, k.userId, k.projectId, k.skSealed, JSON.stringify(k.actions), k.createdAt, k.status ?? 'active', k.description ?? '',
    k.expiresAt ?? null, k.securityTokenHash ?? null, k.issuedBy ?? null,
  ];
}

/** The columns a patch sets (those whose value is not undefined) and their values, in the same order. */
export function patchColumns(fields: Record<string, string | number | undefined>): { cols: string[]; values: Array<string | number> } {
  const cols: string[] = [];
  const values: Array<string | number> = [];
  for (const [c, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    cols.push(c);
    values.push(v);
  }
  return { cols, values };
}
