/** Inventory domain: servers and their console targets, and the ServerStore port. */

/** Huawei ECS statuses (ShowServer `status`). Only ACTIVE servers can be logged in to. */
export const SERVER_STATUSES = [
  'ACTIVE', 'BUILD', 'SHUTOFF', 'REBOOT', 'HARD_REBOOT', 'REBUILD', 'MIGRATING', 'RESIZE',
  'VERIFY_RESIZE', 'REVERT_RESIZE', 'ERROR', 'DELETED', 'SHELVED', 'SHELVED_OFFLOADED', 'UNKNOWN',
] as const;
export type ServerStatus = (typeof SERVER_STATUSES)[number];

export type BackendAuth = 'none' | 'vnc-password';

/** Where the proxy connects for this server's console, and how it authenticates there. */
export interface ConsoleTarget {
  readonly host: string;
  readonly port: number;
  readonly auth: BackendAuth;
  /** VNC password sealed with the master key when auth is `vnc-password`, else null. */
  readonly passwordSealed: string | null;
}

export interface Server {
  /** UUID. */
  readonly id: string;
  readonly projectId: string;
  readonly name: string;
  readonly status: ServerStatus;
  readonly availabilityZone: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly console: ConsoleTarget;
  /** Incremented whenever the console target changes; tokens remember the revision they were issued for. */
  readonly consoleRevision: number;
}

export interface ServerPatch {
  readonly name?: string;
  readonly status?: ServerStatus;
  readonly availabilityZone?: string;
  /** A new target bumps `consoleRevision`. */
  readonly console?: ConsoleTarget;
}

export interface ServerFilter {
  readonly projectId?: string;
  readonly limit?: number;
  readonly offset?: number;
  readonly name?: string;
  readonly status?: ServerStatus;
}

/** Persistence port of the inventory. */
export interface ServerStore {
  insertServer(s: Server): Promise<void>;
  getServer(id: string): Promise<Server | null>;
  listServers(filter: ServerFilter): Promise<Server[]>;
  countServers(filter: ServerFilter): Promise<number>;
  /** Applies a patch; returns the server before and after, or null when it does not exist. */
  updateServer(id: string, patch: ServerPatch, now: number): Promise<{ before: Server; after: Server } | null>;
  deleteServer(id: string): Promise<Server | null>;
}
