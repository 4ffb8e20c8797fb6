/** Audit events: issued, connected, rejected, closed; never with token material (hash prefix only). */

export type AuditKind = 'issued' | 'connected' | 'rejected' | 'closed' | 'revoked';

export interface AuditEvent {
  readonly id?: number;
  readonly at: number;
  readonly kind: AuditKind;
  readonly nodeId: string;
  readonly projectId: string | null;
  readonly serverId: string | null;
  /** First 8 hex digits of sha256(token). */
  readonly tokenRef: string | null;
  readonly sessionId: string | null;
  readonly detail: Readonly<Record<string, string | number | boolean | null>>;
}

export interface AuditFilter {
  readonly serverId?: string;
  readonly kind?: AuditKind;
  readonly sinceId?: number;
  readonly limit?: number;
}

export interface AuditStore {
  appendAudit(e: AuditEvent): Promise<void>;
  listAudit(filter: AuditFilter): Promise<AuditEvent[]>;
}
