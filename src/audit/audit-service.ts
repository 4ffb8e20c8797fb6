/**
 * Audit search, export and retention: who was issued which console URL, who opened which console,
 * when, from where, for how long, what was refused, and what operators did. Newest first, paged by
 * a marker (the last id of the previous page), as Huawei lists page.
 */
import type { Clock } from '../clock.js';
import { ValidationError } from '../errors.js';
import { AUDIT_KINDS, AUDIT_OUTCOMES, type AuditEvent, type AuditFilter, type AuditKind, type AuditOutcome, type AuditStore } from './types.js';

/** A search as an operator gives it (CLI flags, API query): every field optional, checked by {@link parseAuditQuery}. */
export interface AuditQueryInput {
  server?: string;
  project?: string;
  /** The acting user's id. */
  user?: string;
  /** An access key id (AK): events of that credential. */
  accessKey?: string;
  /** Any credential as recorded (`ak:<AK>`, `user:<id>`, `cli:<name>`). */
  credential?: string;
  clientAddress?: string;
  kind?: string;
  outcome?: string;
  /** ISO 8601 time or epoch ms: events at or after it. */
  from?: string;
  /** ISO 8601 time or epoch ms: events before it. */
  to?: string;
  /** The last id of the previous page. */
  marker?: string;
  limit?: string | number;
  /** Only events of these projects (an administrator's domain); not an operator's filter. */
  projectIds?: readonly string[];
  /** With `projectIds`: also the events recorded with this domain alone (its users' and keys' lifecycle); not an operator's filter. */
  domainId?: string;
}

export const AUDIT_PAGE_MAX = 1000;

function time(raw: string, field: string): number {
  const ms = /^\d{1,15}$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms)) throw new ValidationError(`${field} must be an ISO 8601 time (2026-01-31T12:00:00Z) or epoch milliseconds`, field);
  return ms;
}

const PRINTABLE = /^[^\u0000-\u001f\u007f]{1,256}$/;

function text(raw: string | undefined, field: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !PRINTABLE.test(raw)) throw new ValidationError(`${field} must be 1-256 printable characters`, field);
  return raw;
}

/** Checks a search and returns the store filter (newest first) and page size. Throws ValidationError naming the field. */
export function parseAuditQuery(q: AuditQueryInput, maxLimit = AUDIT_PAGE_MAX): { filter: AuditFilter; limit: number } {
  const kind = text(q.kind, 'kind');
  if (kind !== undefined && !(AUDIT_KINDS as readonly string[]).includes(kind)) throw new ValidationError(`kind must be one of ${AUDIT_KINDS.join(', ')}`, 'kind');
  const outcome = text(q.outcome, 'outcome');
  if (outcome !== undefined && !(AUDIT_OUTCOMES as readonly string[]).includes(outcome)) throw new ValidationError(`outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`, 'outcome');
  const ak = text(q.accessKey, 'access_key');
  const credential = text(q.credential, 'credential');
  if (ak !== undefined && credential !== undefined) throw new ValidationError('give access_key or credential, not both', 'credential');
  const markerRaw = text(q.marker, 'marker');
  if (markerRaw !== undefined && !/^\d{1,15}$/.test(markerRaw)) throw new ValidationError('marker must be the id of an audit record', 'marker');
  const limitRaw = q.limit === undefined || q.limit === '' ? String(Math.min(100, maxLimit)) : String(q.limit);
  if (!/^\d{1,9}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > maxLimit) throw new ValidationError(`limit must be 1-${maxLimit}`, 'limit');
  const from = text(q.from, 'from');
  const to = text(q.to, 'to');
  const filter: AuditFilter = {
    order: 'desc',
    ...(text(q.server, 'server_id') !== undefined ? { serverId: q.server! } : {}),
    ...(text(q.project, 'project_id') !== undefined ? { projectId: q.project! } : {}),
    ...(text(q.user, 'user_id') !== undefined ? { actorUserId: q.user! } : {}),
    ...(ak !== undefined ? { actorCredential: `ak:${ak}` } : credential !== undefined ? { actorCredential: credential } : {}),
    ...(text(q.clientAddress, 'client_address') !== undefined ? { clientAddress: q.clientAddress! } : {}),
    ...(kind !== undefined ? { kind: kind as AuditKind } : {}),
    ...(outcome !== undefined ? { outcome: outcome as AuditOutcome } : {}),
    ...(from !== undefined ? { from: time(from, 'from') } : {}),
    ...(to !== undefined ? { to: time(to, 'to') } : {}),
    ...(markerRaw !== undefined ? { beforeId: Number(markerRaw) } : {}),
    ...(q.projectIds !== undefined ? { projectIds: q.projectIds } : {}),
    ...(q.domainId !== undefined ? { domainId: q.domainId } : {}),
  };
  return { filter, limit: Number(limitRaw) };
}

/** An audit event as the API, the CLI and the JSON export give it. */
export function auditJson(e: AuditEvent): Record<string, unknown> {
  return {
    id: e.id ?? null, at: new Date(e.at).toISOString(), kind: e.kind, outcome: e.outcome ?? null, node_id: e.nodeId,
    project_id: e.projectId, server_id: e.serverId, session_id: e.sessionId, token_ref: e.tokenRef,
    actor_user_id: e.actorUserId ?? null, actor_credential: e.actorCredential ?? null, client_address: e.clientAddress ?? null,
    request_id: e.requestId ?? null, target: e.target ?? null, detail: e.detail,
  };
}

const CSV_COLUMNS = [
  'id', 'at', 'kind', 'outcome', 'node_id', 'project_id', 'server_id', 'session_id', 'token_ref', 'actor_user_id',
  'actor_credential', 'client_address', 'request_id', 'target', 'detail',
] as const;

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote, line break or edge space, and a
 * cell a spreadsheet would read as a formula (starting with = + - @, tab or carriage return) is
 * neutralised with a leading apostrophe (OWASP CSV injection).
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV header line (with a UTF-8 byte order mark, so that spreadsheets read UTF-8). */
export function csvHeader(): string {
  return `\uFEFF${CSV_COLUMNS.join(',')}\r\n`;
}

export function csvRow(e: AuditEvent): string {
  const j = auditJson(e);
  return `${CSV_COLUMNS.map((c) => csvCell(j[c])).join(',')}\r\n`;
}

/**
 * An export's text in pieces of about 64 KiB as the events are read: CSV (the header first) or
 * JSON lines. The API streams it as the answer and the CLI writes it out, so neither holds a
 * large export in memory.
 */
export async function* exportText(events: AsyncIterable<AuditEvent>, format: 'csv' | 'json'): AsyncGenerator<string> {
  let buf = format === 'csv' ? csvHeader() : '';
  for await (const e of events) {
    buf += format === 'csv' ? csvRow(e) : `${JSON.stringify(auditJson(e))}\n`;
    if (buf.length >= 65_536) {
      yield buf;
      buf = '';
    }
  }
  if (buf !== '') yield buf;
}

export class AuditService {
  constructor(
    private readonly store: AuditStore,
    private readonly clock: Clock,
    private readonly retentionDays: number,
  ) {}

  /** One page, newest first; `next_marker` is set when there may be more. */
  async search(q: AuditQueryInput): Promise<{ events: AuditEvent[]; nextMarker: string | null }> {
    const { filter, limit } = parseAuditQuery(q);
    const events = await this.store.listAudit({ ...filter, limit });
    return { events, nextMarker: events.length === limit ? String(events[events.length - 1]!.id) : null };
  }

  /**
   * Every matching event, newest first, read page by page as the caller consumes them (no cap:
   * an export of any size is complete; records added meanwhile are newer and left out). The
   * search is checked now (ValidationError), before anything is read.
   */
  export(q: Omit<AuditQueryInput, 'limit' | 'marker'>): AsyncGenerator<AuditEvent> {
    const { filter } = parseAuditQuery({ ...q, limit: AUDIT_PAGE_MAX });
    return this.pages(filter);
  }

  private async *pages(filter: AuditFilter): AsyncGenerator<AuditEvent> {
    let beforeId: number | undefined;
    for (;;) {
      const page = await this.store.listAudit({ ...filter, limit: AUDIT_PAGE_MAX, ...(beforeId !== undefined ? { beforeId } : {}) });
      yield* page;
      if (page.length < AUDIT_PAGE_MAX) return;
      beforeId = page[page.length - 1]!.id;
    }
  }

  /** Deletes events older than the retention (`auditRetentionDays`); returns how many. */
  purge(): Promise<number> {
    return this.store.purgeAudit(this.clock.now() - this.retentionDays * 86_400_000);
  }
}
