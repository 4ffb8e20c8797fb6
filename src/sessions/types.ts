/**
 * Live console sessions and the change feed. Sessions are recorded in the store so that
 * `sessions list|kill` sees every proxy node; changes (server stopped, deleted, console moved,
 * sessions killed) are appended to a feed every node follows, so a change made anywhere (API node,
 * CLI, another proxy) closes the affected sessions wherever they run.
 */

export interface SessionRecord {
  readonly id: string;
  readonly nodeId: string;
  /** The process that runs the session (a new id at every start): rows of an earlier process of the same node are dead. */
  readonly instanceId: string;
  readonly serverId: string;
  readonly projectId: string;
  /** First 8 hex of sha256(token). */
  readonly tokenRef: string;
  readonly clientAddress: string;
  readonly startedAt: number;
  /** Refreshed periodically by the owning process; stale rows belong to a node that is gone or cut off. */
  readonly heartbeatAt: number;
  /** The user the console URL was issued to, when known. */
  readonly userId?: string | null;
  /** The credential the console URL was issued to (`ak:<AK>`, `user:<id> token:<ref>`). */
  readonly credential?: string | null;
  /** Bytes relayed so far, as of the last heartbeat. */
  readonly bytesToClient?: number;
  readonly bytesToBackend?: number;
}

/** A live session's traffic counters, written by the heartbeat when they moved. */
export interface SessionTraffic {
  readonly id: string;
  readonly bytesToClient: number;
  readonly bytesToBackend: number;
}

/** The process that owns session rows. */
export interface SessionOwner {
  readonly nodeId: string;
  readonly instanceId: string;
}

export interface SessionStore {
  /** Records a session (replaces a row with the same id). */
  insertSession(s: SessionRecord): Promise<void>;
  deleteSession(id: string): Promise<void>;
  /**
   * Makes the rows of `owner` equal `live`, in one transaction: every live session is written
   * (inserted again if it was purged, its heartbeat set to `now`), every other row of this
   * instance is deleted and, with `replacePredecessors`, every row of the node id written by
   * another instance (an earlier process of the same node). Returns how many rows were deleted.
   */
  syncSessions(owner: SessionOwner, live: readonly SessionRecord[], now: number, replacePredecessors: boolean): Promise<number>;
  /**
   * Sets the heartbeat of every row of `owner` to `now`, and the byte counters of the sessions in
   * `traffic`; returns how many rows it has.
   */
  touchSessions(owner: SessionOwner, now: number, traffic?: readonly SessionTraffic[]): Promise<number>;
  /** Sessions whose heartbeat is at or after `freshSince`. */
  listSessions(filter: { serverId?: string; freshSince: number }): Promise<SessionRecord[]>;
  getSession(id: string): Promise<SessionRecord | null>;
  /** Deletes rows of dead nodes (heartbeat before `before`). */
  purgeStaleSessions(before: number): Promise<number>;
}

/**
 * `session-kill` names one session (`sessionId`) or, without one, every session of `serverId`
 * (also those whose rows a node cut off from the store could not keep fresh).
 * `record-changed` ends nothing: a server changed in a way that leaves its sessions alone (name, zone,
 * VNC password): the nodes' caches drop it. `credential` names it (`server:<id>`; null: every
 * server), or a recording policy changed (`recording:project:<id>`, `recording:server:<id>`);
 * `serverId` stays null, so that a node that does not know this kind closes nothing.
 */
export type ChangeKind = 'server-stopped' | 'server-deleted' | 'console-changed' | 'session-kill' | 'credential-revoked' | 'record-changed';

export interface ChangeEvent {
  readonly id: number;
  readonly at: number;
  readonly kind: ChangeKind;
  readonly serverId: string | null;
  readonly sessionId: string | null;
  /**
   * `credential-revoked`: what was revoked, matched against the issuer of each session's token:
   * `ak:<AK>` (a key deactivated or deleted), `token:<hash>` (an IAM token revoked), `user:<id>`
   * (a user disabled or deleted: every credential of theirs).
   */
  readonly credential?: string | null;
  /** Who caused the change (`ak:<AK>`, `user:<id>`, `cli:<os user>`), when known. */
  readonly actor?: string | null;
  /** The operator's reason (a session kill's), shown to the user whose console closes. */
  readonly reason?: string | null;
}

export interface ChangeFeedStore {
  /** Appends a change; returns its id (ids increase and are never reused). */
  appendChange(e: Omit<ChangeEvent, 'id'>): Promise<number>;
  /** Changes with id > `afterId`, oldest first. */
  changesSince(afterId: number, limit: number): Promise<ChangeEvent[]>;
  /** The newest id (0 when none): where a starting node begins following. */
  latestChangeId(): Promise<number>;
  /**
   * Deletes changes older than `before`, except the newest change: it stays so that a follower
   * that was away can tell that changes after its last id were purged (the first id it reads is
   * then above its last id + 1).
   */
  purgeChanges(before: number): Promise<number>;
  /**
   * Optional push: calls `onAppend` soon after any node appends (PostgreSQL LISTEN/NOTIFY), so
   * followers need not wait for their next poll; `onAppend` is also called after every
   * (re)connection, and `onLost` when the push connection is lost (appends are then missed until
   * the next `onAppend`). Returns a function that stops watching.
   */
  watch?(onAppend: () => void, onLost?: () => void): () => void;
}
