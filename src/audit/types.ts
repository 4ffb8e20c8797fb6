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
  | 'console-output'
  // A console screenshot call (our extension of the ECS API).
  | 'screenshot'
  // Operator actions (inventory changes, bulk syncs, session kills) from the admin API and the CLI.
  | 'operator';

/** Every kind, for validation of search filters (a kind added here is searchable). */
export const AUDIT_KINDS: readonly AuditKind[] = [
  'issued', 'connected', 'rejected', 'closed', 'revoked', 'ak-locked', 'ak-unlocked',
  'ak-created', 'ak-updated', 'ak-activated', 'ak-deactivated', 'ak-deleted', 'ak-temporary-created',
  'user-created', 'user-updated', 'user-enabled', 'user-disabled', 'user-password-changed', 'user-deleted',
  'project-created', 'project-updated', 'project-deleted', 'console-output', 'screenshot', 'operator',
];

/**
 * What an event came to: `ok` (a URL issued, a session opened or closed, an operator action
 * done), `refused` (a console refused before or during its handshake, a refused operator action).
 */
export type AuditOutcome = 'ok' | 'refused';
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['ok', 'refused'];

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
  /** What the event came to; null for kinds that have none (identity changes). */
  readonly outcome?: AuditOutcome | null;
  /**
   * The domain the event belongs to, when it has no project to say so (a user's or an access
   * key's lifecycle): an administrator's search of its domain finds it by this.
   */
  readonly domainId?: string | null;
}

export interface AuditFilter {
  readonly serverId?: string;
  readonly kind?: AuditKind;
  readonly target?: string;
  /** Oldest first, ids above this one (the default order). */
  readonly sinceId?: number;
  readonly limit?: number;
  readonly projectId?: string;
  /** Events of any of these projects (a domain's). */
  readonly projectIds?: readonly string[];
  /** Events recorded with this domain; with `projectIds`: events of those projects or of this domain. */
  readonly domainId?: string;
  /** The acting user (who opened the console, who acted as operator). */
  readonly actorUserId?: string;
  /** The acting credential, e.g. `ak:<AK>`, `user:<id>`, `cli:<os user>`. */
  readonly actorCredential?: string;
  readonly clientAddress?: string;
  readonly outcome?: AuditOutcome;
  /** Events at or after this time (epoch ms). */
  readonly from?: number;
  /** Events before this time (epoch ms). */
  readonly to?: number;
  /** Newest first, ids below this one (pagination marker of a newest-first search). */
  readonly beforeId?: number;
  /** `desc`: newest first (searches); default `asc`. */
  readonly order?: 'asc' | 'desc';
}

export interface AuditStore {
  appendAudit(e: AuditEvent): Promise<void>;
  listAudit(filter: AuditFilter): Promise<AuditEvent[]>;
  /** Deletes events older than `before` (epoch ms); returns how many (the retention purge). */
  purgeAudit(before: number): Promise<number>;
}
