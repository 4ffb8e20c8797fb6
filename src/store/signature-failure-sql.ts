/**
 * Counting one signature failure of an (AK, source address) pair in one statement, shared by the
 * SQL adapters. An upsert: concurrent failures from several processes or nodes are all counted
 * (SQLite: one writer at a time; PostgreSQL: ON CONFLICT DO UPDATE locks the row and re-reads it).
 */
import type { SignatureFailureOutcome } from '../identity/types.js';
import { num, optNum, type Row } from './row-mappers.js';

/** How each parameter is written in the adapter's dialect (`@now`, `$3::bigint`, ...). */
export interface FailureParams {
  ak: string;
  address: string;
  now: string;
  threshold: string;
  /** now + lockMs: when a lock set now ends, and when the record expires. */
  until: string;
}

/**
 * `base` is the count the failure adds to: 0 when the record expired. Reaching the threshold sets
 * the lock and restarts the count at 0, so `failures = 0` after the statement means that this
 * failure set the lock (every other outcome leaves at least 1). Returns `failures, locked_until`.
 */
export function recordSignatureFailureSql(p: FailureParams): string {
  const base = `(CASE WHEN f.expires_at <= ${p.now} THEN 0 ELSE f.failures END)`;
  return `
INSERT INTO signature_failures AS f (ak, address, failures, locked_until, expires_at)
VALUES (${p.ak}, ${p.address}, CASE WHEN 1 >= ${p.threshold} THEN 0 ELSE 1 END, CASE WHEN 1 >= ${p.threshold} THEN ${p.until} END, ${p.until})
ON CONFLICT (ak, address) DO UPDATE SET
  failures = CASE WHEN ${base} + 1 >= ${p.threshold} THEN 0 ELSE ${base} + 1 END,
  locked_until = CASE WHEN ${base} + 1 >= ${p.threshold} THEN ${p.until} WHEN f.expires_at <= ${p.now} THEN NULL ELSE f.locked_until END,
  expires_at = ${p.until}
RETURNING failures, locked_until`;
}

/** The outcome, from the row the statement returned. */
export function signatureFailureOutcome(r: Row, now: number): SignatureFailureOutcome {
  const failures = num(r['failures']);
  const lockedUntil = optNum(r['locked_until']);
  return { failures, lockedUntil, locked: lockedUntil !== null && lockedUntil > now, lockedNow: failures === 0 };
}
