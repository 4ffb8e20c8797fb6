/** Writes audit events to the store and the log. Token material never enters: callers pass tokenRef. */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { AuditEvent, AuditKind, AuditStore } from './types.js';

type Optional = 'projectId' | 'serverId' | 'tokenRef' | 'sessionId' | 'detail' | 'actorUserId' | 'actorCredential' | 'target' | 'requestId' | 'clientAddress' | 'outcome' | 'domainId';

export type AuditInput = Omit<AuditEvent, 'id' | 'at' | 'nodeId' | Optional> & {
  [K in Optional]?: AuditEvent[K];
};

/**
 * Takes an event's log fields in place of a line of its own: the API puts them on the request's
 * access line, so that a call that issues a console URL writes one line, not two.
 */
export type AuditLogSink = (fields: Record<string, unknown>) => void;

export class Auditor {
  constructor(
    private readonly store: AuditStore,
    private readonly clock: Clock,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {}

  /**
   * Records an event; the promise rejects when the store cannot keep it. Its log fields go to
   * `logTo` when given (before the store write, as the line would), else to a line `audit <kind>`.
   */
  async record(kind: AuditKind, e: Omit<AuditInput, 'kind'>, logTo?: AuditLogSink): Promise<void> {
    const event: AuditEvent = {
      at: this.clock.now(), kind, nodeId: this.nodeId, projectId: e.projectId ?? null, serverId: e.serverId ?? null,
      tokenRef: e.tokenRef ?? null, sessionId: e.sessionId ?? null, detail: e.detail ?? {},
      actorUserId: e.actorUserId ?? null, actorCredential: e.actorCredential ?? null, target: e.target ?? null,
      requestId: e.requestId ?? null, clientAddress: e.clientAddress ?? null, outcome: e.outcome ?? null,
      ...(e.domainId ? { domainId: e.domainId } : {}),
    };
    const fields = {
      audit: kind, project: event.projectId, server: event.serverId, tokenRef: event.tokenRef, session: event.sessionId,
      ...(event.target !== null ? { target: event.target, actor: event.actorCredential, requestId: event.requestId, clientAddress: event.clientAddress } : {}),
      ...event.detail,
    };
    if (logTo) logTo(fields);
    else this.log.info(fields, `audit ${kind}`);
    await this.store.appendAudit(event);
  }
}
