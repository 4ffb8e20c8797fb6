/**
 * Live console sessions as operators see them (every proxy node's, from the store), and ending
 * them with a reason the user's page shows. Shared by the CLI and the admin API.
 */
import type { Auditor } from '../audit/auditor.js';
import type { Clock } from '../clock.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { InventoryService, OperatorContext } from '../inventory/inventory-service.js';
import type { ChangeFeedStore, SessionStore } from './types.js';

/** A live session with its server's name. */
export interface LiveSession {
  readonly id: string;
  readonly serverId: string;
  /** Null when the server is gone (its sessions are closing). */
  readonly serverName: string | null;
  readonly projectId: string;
  readonly userId: string | null;
  readonly credential: string | null;
  readonly clientAddress: string;
  readonly nodeId: string;
  readonly startedAt: number;
  readonly bytesToClient: number;
  readonly bytesToBackend: number;
  readonly tokenRef: string;
}

/** Longest reason text (it is shown on the page, within a WebSocket close frame). */
export const KILL_REASON_MAX = 80;

export function validKillReason(raw: unknown): string | null {
  if (raw === undefined || raw === null || raw === '') return null;
  if (typeof raw !== 'string' || /[\u0000-\u001f\u007f]/.test(raw) || [...raw].length > KILL_REASON_MAX) {
    throw new ValidationError(`reason must be 1-${KILL_REASON_MAX} printable characters`, 'reason');
  }
  return raw.trim() || null;
}

export class SessionService {
  constructor(
    private readonly sessions: SessionStore,
    private readonly changes: ChangeFeedStore,
    private readonly inventory: InventoryService,
    private readonly auditor: Auditor,
    private readonly clock: Clock,
    private readonly staleMs: number,
  ) {}

  async list(f: { serverId?: string; projectId?: string } = {}): Promise<LiveSession[]> {
    const rows = await this.sessions.listSessions({ freshSince: this.clock.now() - this.staleMs, ...(f.serverId ? { serverId: f.serverId } : {}) });
    const names = new Map<string, string | null>();
    const out: LiveSession[] = [];
    for (const r of rows) {
      if (f.projectId && r.projectId !== f.projectId) continue;
      if (!names.has(r.serverId)) names.set(r.serverId, (await this.inventory.findServer(r.serverId))?.name ?? null);
      out.push({
        id: r.id, serverId: r.serverId, serverName: names.get(r.serverId) ?? null, projectId: r.projectId, userId: r.userId ?? null,
        credential: r.credential ?? null, clientAddress: r.clientAddress, nodeId: r.nodeId, startedAt: r.startedAt,
        bytesToClient: r.bytesToClient ?? 0, bytesToBackend: r.bytesToBackend ?? 0, tokenRef: r.tokenRef,
      });
    }
    return out;
  }

  /**
   * Ends one session, or every session of a server (also those a node cut off from the store
   * could not keep listed: one change for the server, which every proxy node applies). The
   * reason is shown on the user's page. Returns how many sessions were listed.
   */
  async kill(what: { sessionId?: string; serverId?: string }, reason: unknown, ctx: OperatorContext): Promise<{ serverId: string; sessionId: string | null; listed: number }> {
    const text = validKillReason(reason);
    const now = this.clock.now();
    let serverId: string;
    let sessionId: string | null = null;
    let listed: number;
    if (what.sessionId) {
      const row = await this.sessions.getSession(what.sessionId);
      if (!row || (what.serverId && row.serverId !== what.serverId)) throw new NotFoundError('session', what.sessionId);
      serverId = row.serverId;
      sessionId = row.id;
      listed = 1;
    } else if (what.serverId) {
      serverId = what.serverId;
      listed = (await this.sessions.listSessions({ serverId, freshSince: now - this.staleMs })).length;
      if (listed === 0 && !(await this.inventory.findServer(serverId))) throw new NotFoundError('server', serverId);
    } else {
      throw new ValidationError('give a session id, or a server id to end all of its sessions', 'session');
    }
    await this.changes.appendChange({ at: now, kind: 'session-kill', serverId, sessionId, actor: ctx.actor.credential, reason: text });
    const server = await this.inventory.findServer(serverId);
    await this.auditor.record('operator', {
      projectId: server?.projectId ?? null, serverId, sessionId, target: sessionId ? `session:${sessionId}` : `server:${serverId}`,
      actorUserId: ctx.actor.userId, actorCredential: ctx.actor.credential, requestId: ctx.requestId ?? null, clientAddress: ctx.clientAddress ?? null,
      outcome: 'ok', detail: { action: 'session-kill', door: ctx.door, reason: text, listed },
    });
    return { serverId, sessionId, listed };
  }
}
