/**
 * The live sessions of this node: counts for the caps (global, per project, per server), slots
 * reserved while a connection is being checked, and closing by server or id.
 */
import type { RawData, WebSocket } from 'ws';
import type { Logger } from '../log.js';
import type { SessionInfo } from './console-session.js';
import { CloseCode, type CloseCodeValue } from './close-codes.js';

/** What a session offers its browser socket's listeners. */
export interface BrowserSocketOwner {
  alive: boolean;
  readonly log: Logger;
  close(code: CloseCodeValue, reason: string): void;
  onBrowserMessage(data: RawData, isBinary: boolean): void;
}

/** The session a browser socket belongs to (a property, so the listeners below are shared, not closures per session). */
const OWNER = Symbol('session');
type OwnedSocket = WebSocket & { [OWNER]: BrowserSocketOwner };

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as OwnedSocket)[OWNER].onBrowserMessage(data, isBinary);
}

function onClose(this: WebSocket): void {
  (this as OwnedSocket)[OWNER].close(CloseCode.Normal, 'browser closed the connection');
}

function onError(this: WebSocket, e: Error): void {
  const s = (this as OwnedSocket)[OWNER];
  s.log.debug({ err: e }, 'browser socket error');
  s.close(CloseCode.BadClientData, 'browser connection error');
}

function onPong(this: WebSocket): void {
  (this as OwnedSocket)[OWNER].alive = true;
}

/**
 * The browser socket's events, handled alike by every kind of session: its messages go to
 * `onBrowserMessage`; its close or error ends the session; a pong marks it alive for the ping round.
 * The listeners are the same four functions for every socket (an idle session holds no closure for them).
 */
export function bindBrowserSocket(ws: WebSocket, session: BrowserSocketOwner): void {
  (ws as OwnedSocket)[OWNER] = session;
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  ws.on('pong', onPong);
}

/** What the registry and the proxy's sweeper need of a live session (VNC or serial). */
export interface LiveSession {
  readonly info: SessionInfo;
  readonly ws: WebSocket;
  readonly startedAt: number;
  readonly lastInputAt: number;
  /** Set false before each ping; a pong sets it back. */
  alive: boolean;
  readonly established: boolean;
  /** The session's recording, when it is recorded (console sessions only). */
  readonly recordingId?: string | null;
  /** Bytes relayed so far, each way. */
  readonly bytesToClient: number;
  readonly bytesToBackend: number;
  /** Set before close() by whoever ends the session for someone (an operator's credential). */
  closedBy: string | null;
  close(code: CloseCodeValue, reason: string): void;
}

export interface Caps {
  readonly total: number;
  readonly perProject: number;
  readonly perServer: number;
}

/** A slot held from the cap check until the session ends (or the upgrade fails). */
export interface Slot {
  release(): void;
}

function inc(m: Map<string, number>, k: string, d: number): void {
  const n = (m.get(k) ?? 0) + d;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

/** A slot held; an object, not a closure (one per live session). */
class HeldSlot implements Slot {
  private released = false;
  constructor(private readonly registry: SessionRegistry, private readonly projectId: string, private readonly serverId: string) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.registry.freeSlot(this.projectId, this.serverId);
  }
}

export class SessionRegistry {
  private readonly sessions = new Map<string, LiveSession>();
  /** The console revision each session's token was issued for (re-checks against the inventory). */
  private readonly revisions = new WeakMap<LiveSession, number>();
  /** The slot each session holds, given back when it is removed. */
  private readonly held = new WeakMap<LiveSession, Slot>();
  private readonly byServer = new Map<string, Set<LiveSession>>();
  private slots = 0;
  private readonly slotsByProject = new Map<string, number>();
  private readonly slotsByServer = new Map<string, number>();

  constructor(private readonly caps: Caps) {}

  /** Whether the node-wide cap is reached (checked before any store work). */
  full(): boolean {
    return this.slots >= this.caps.total;
  }

  /**
   * Takes a slot for a session of `serverId` in `projectId`, or says which cap is reached.
   * Synchronous: concurrent upgrades cannot both pass a check and exceed a cap.
   */
  reserve(projectId: string, serverId: string): Slot | 'total' | 'project' | 'server' {
    if (this.slots >= this.caps.total) return 'total';
    if ((this.slotsByProject.get(projectId) ?? 0) >= this.caps.perProject) return 'project';
    if ((this.slotsByServer.get(serverId) ?? 0) >= this.caps.perServer) return 'server';
    this.slots++;
    inc(this.slotsByProject, projectId, 1);
    inc(this.slotsByServer, serverId, 1);
    return new HeldSlot(this, projectId, serverId);
  }

  /** @internal a slot given back (once). */
  freeSlot(projectId: string, serverId: string): void {
    this.slots--;
    inc(this.slotsByProject, projectId, -1);
    inc(this.slotsByServer, serverId, -1);
  }

  /** Registers a live session and the slot it holds until it is removed. */
  add(s: LiveSession, consoleRevision: number, slot: Slot): void {
    this.sessions.set(s.info.id, s);
    this.revisions.set(s, consoleRevision);
    this.held.set(s, slot);
    let set = this.byServer.get(s.info.serverId);
    if (!set) this.byServer.set(s.info.serverId, (set = new Set()));
    set.add(s);
  }

  /** Removes a session and gives its slot back. */
  remove(s: LiveSession): void {
    this.held.get(s)?.release();
    this.held.delete(s);
    this.sessions.delete(s.info.id);
    const set = this.byServer.get(s.info.serverId);
    set?.delete(s);
    if (set?.size === 0) this.byServer.delete(s.info.serverId);
  }

  get(id: string): LiveSession | undefined {
    return this.sessions.get(id);
  }

  /**
   * Closes the sessions of a server whose tokens were issued at or before `issuedBefore` (epoch
   * ms): a change ends the sessions that existed when it was made, not those opened since with
   * tokens issued after it (a stop, a start and a new console can all fall within one poll of the
   * change feed). Returns how many.
   */
  closeServer(serverId: string, code: CloseCodeValue, reason: string, issuedBefore: number, closedBy: string | null = null): number {
    const set = this.byServer.get(serverId);
    if (!set) return 0;
    const list = [...set].filter((s) => s.info.tokenIssuedAt <= issuedBefore);
    for (const s of list) {
      if (closedBy !== null) s.closedBy = closedBy;
      s.close(code, reason);
    }
    return list.length;
  }

  /**
   * Closes the sessions whose token was issued, at or before `issuedBefore`, through `credential`
   * (`ak:<AK>`, `token:<hash>`) or by a user (`user:<id>`). Returns how many.
   */
  closeIssuedBy(credential: string, code: CloseCodeValue, reason: string, issuedBefore: number): number {
    const userId = credential.startsWith('user:') ? credential.slice(5) : null;
    const list = [...this.sessions.values()].filter((s) => s.info.tokenIssuedAt <= issuedBefore &&
      (userId !== null ? s.info.issuedByUser === userId : s.info.issuedBy === credential));
    for (const s of list) s.close(code, reason);
    return list.length;
  }

  /** The servers that have sessions here. */
  serverIds(): string[] {
    return [...this.byServer.keys()];
  }

  /** The sessions of a server, each with the console revision its token was issued for. */
  sessionsOf(serverId: string): Array<{ session: LiveSession; consoleRevision: number }> {
    return [...(this.byServer.get(serverId) ?? [])].map((session) => ({ session, consoleRevision: this.revisions.get(session) ?? 0 }));
  }

  closeAll(code: CloseCodeValue, reason: string): void {
    for (const s of [...this.sessions.values()]) s.close(code, reason);
  }

  get size(): number {
    return this.sessions.size;
  }

  values(): IterableIterator<LiveSession> {
    return this.sessions.values();
  }
}
