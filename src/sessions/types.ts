/**
 * Live console sessions and the change feed. Sessions are recorded in the store so that
 * `sessions list|kill` sees every proxy node; changes (server stopped, deleted, console moved,
 * session killed) are appended to a feed every node follows, so a change made anywhere (API node,
 * CLI, another proxy) closes the affected sessions wherever they run.
 */

export interface SessionRecord {
  readonly id: string;
  readonly nodeId: string;
  readonly serverId: string;
  readonly projectId: string;
  /** First 8 hex of sha256(token). */
  readonly tokenRef: string;
  readonly clientAddress: string;
  readonly startedAt: number;
  /** Refreshed periodically by the owning node; stale rows belong to a dead node. */
  readonly heartbeatAt: number;
}

export interface SessionStore {
  insertSession(s: SessionRecord): Promise<void>;
  deleteSession(id: string): Promise<void>;
  /** Refreshes the heartbeat of a node's sessions. */
  heartbeatSessions(nodeId: string, now: number): Promise<void>;
  /** Sessions whose heartbeat is at or after `freshSince`. */
  listSessions(filter: { serverId?: string; freshSince: number }): Promise<SessionRecord[]>;
  getSession(id: string): Promise<SessionRecord | null>;
  /** Deletes rows of dead nodes (heartbeat before `before`). */
  purgeStaleSessions(before: number): Promise<number>;
}

export type ChangeKind = 'server-stopped' | 'server-deleted' | 'console-changed' | 'session-kill';

export interface ChangeEvent {
  readonly id: number;
  readonly at: number;
  readonly kind: ChangeKind;
  readonly serverId: string | null;
  readonly sessionId: string | null;
}

export interface ChangeFeedStore {
  /** Appends a change; returns its id (ids increase). */
  appendChange(e: Omit<ChangeEvent, 'id'>): Promise<number>;
  /** Changes with id > `afterId`, oldest first. */
  changesSince(afterId: number, limit: number): Promise<ChangeEvent[]>;
  /** The newest id (0 when none): where a starting node begins following. */
  latestChangeId(): Promise<number>;
  purgeChanges(before: number): Promise<number>;
  /**
   * Optional push: calls `onAppend` soon after any node appends (PostgreSQL LISTEN/NOTIFY), so
   * followers need not wait for their next poll. Returns a function that stops watching.
   */
  watch?(onAppend: () => void): () => void;
}
