/**
 * Audit events: console tokens issued, connected, rejected, closed, revoked (never with token
 * material: hash prefix only), and identity changes (access-key locks and unlocks), each with who
 * acted, on what, from where and in which request.
 */

export type AuditKind = 'issued' | 'connected' | 'rejected' | 'closed' | 'revoked' | 'ak-locked' | 'ak-unlocked'
  // The identity lifecycle (iam-admin-service.ts): access keys, temporary credentials, users, projects.
  | 'ak-created' | 'ak-updated' | 'ak-activated' | 'ak-deactivated' | 'ak-deleted' | 'ak-temporary-created'
  | 'user-created' | 'user-updated' | 'user-enabled' | 'user-disabled' | 'user-password-changed' | 'user-deleted'
  | 'project-created' | 'project-updated' | 'project-deleted'
  // Serial consoles: a console output call.
  | 'console-output';

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
  /** The user who acted, when known (null: anonymous or the system). */
  readonly actorUserId?: string | null;
  /** The credential that acted: `ak:<AK>`, `user:<id>`, `cli:<os user>`; null: anonymous or the system. */
  readonly actorCredential?: string | null;
  /** What was acted on, e.g. `ak:<AK>`. */
  readonly target?: string | null;
  /** The API request that caused the event (its X-Request-Id). */
  readonly requestId?: string | null;
  /** The client address as the API or proxy sees it (trustProxy respected). */
  readonly clientAddress?: string | null;
}

export interface AuditFilter {
  readonly serverId?: string;
  readonly kind?: AuditKind;
  readonly target?: string;
  readonly sinceId?: number;
  readonly limit?: number;
}

export interface AuditStore {
  appendAudit(e: AuditEvent): Promise<void>;
  listAudit(filter: AuditFilter): Promise<AuditEvent[]>;
}
