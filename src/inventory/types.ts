/** Inventory domain: servers and their console targets, and the ServerStore port. */

/** Huawei ECS statuses (ShowServer `status`). Only ACTIVE servers can be logged in to. */
export const SERVER_STATUSES = [
  'ACTIVE', 'BUILD', 'SHUTOFF', 'REBOOT', 'HARD_REBOOT', 'REBUILD', 'MIGRATING', 'RESIZE',
  'VERIFY_RESIZE', 'REVERT_RESIZE', 'ERROR', 'DELETED', 'SHELVED', 'SHELVED_OFFLOADED', 'UNKNOWN',
] as const;
export type ServerStatus = (typeof SERVER_STATUSES)[number];

/**
 * How the proxy reaches a server's console: `static` (a VNC server at a fixed address, with no
 * password or a stored one), `qemu-qmp` (QEMU's VNC server; a fresh password per session set over
 * the QMP monitor), `libvirt` (a libvirt domain; address from its live XML, a fresh password per
 * session set through libvirt).
 */
export const TARGET_KINDS = ['static', 'qemu-qmp', 'libvirt'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

/** `one-time-password`: a password set by the proxy for each session, valid for seconds (qemu-qmp, libvirt). */
export type BackendAuth = 'none' | 'vnc-password' | 'one-time-password';

/** TLS to the hypervisor's VNC server (VeNCrypt with X.509 certificates), required when set. */
export interface TargetTls {
  /** The name the hypervisor's certificate must carry (DNS name or IP address). */
  readonly serverName: string;
}

interface TargetCommon {
  readonly auth: BackendAuth;
  /** VNC password sealed with the master key (static targets with auth `vnc-password`), else null. */
  readonly passwordSealed: string | null;
  /** Null: plain RFB over TCP. */
  readonly tls: TargetTls | null;
  /**
   * The VM's serial port as the service reaches it (QEMU `-chardev socket,server=on`, or libvirt's
   * `<serial type='tcp'|'unix'>`): `unix:/path` or `tcp:host:port`; null or absent: no serial console.
   */
  readonly serial?: string | null;
}

/** A VNC server at a fixed address, with no password or a stored (sealed) one. */
export interface StaticTarget extends TargetCommon {
  readonly kind: 'static';
  readonly host: string;
  readonly port: number;
  readonly auth: 'none' | 'vnc-password';
}

/** QEMU's VNC server and its QMP monitor; a one-time password per session. */
export interface QemuQmpTarget extends TargetCommon {
  readonly kind: 'qemu-qmp';
  readonly host: string;
  readonly port: number;
  /** The QMP monitor: `unix:<absolute path>` or `tcp:<host>:<port>`. */
  readonly qmp: string;
  readonly auth: 'one-time-password';
  readonly passwordSealed: null;
}

/** A libvirt domain; the VNC address comes from its live XML, a one-time password per session. */
export interface LibvirtTarget extends TargetCommon {
  readonly kind: 'libvirt';
  /** The libvirt connection URI, e.g. `qemu:///system` or `qemu+tls://hv1.example.com/system`. */
  readonly uri: string;
  /** Domain name or UUID. */
  readonly domain: string;
  /** Where the proxy connects for VNC, when not the address the domain's XML gives. */
  readonly host: string | null;
  readonly auth: 'one-time-password';
  readonly passwordSealed: null;
}

/** Where the proxy connects for this server's console, and how it authenticates there. */
export type ConsoleTarget = StaticTarget | QemuQmpTarget | LibvirtTarget;

/** A server's console target with its stored secret opened: what the backend drivers take. Server side only. */
export interface ResolvedConsoleTarget {
  readonly serverId: string;
  readonly console: ConsoleTarget;
  /** The static target's VNC password in clear, or null. NOTE: never logged nor put in an error. */
  readonly password: string | null;
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
  /** A new target bumps `consoleRevision` (unless `keepConsoleRevision`). */
  readonly console?: ConsoleTarget;
  /**
   * The target is where it was and only its stored password changes: live sessions and URLs
   * already issued stay good (the revision is kept).
   */
  readonly keepConsoleRevision?: boolean;
}

export interface ServerFilter {
  readonly projectId?: string;
  readonly limit?: number;
  readonly offset?: number;
  readonly name?: string;
  readonly status?: ServerStatus;
  readonly availabilityZone?: string;
  /** Servers of any of these projects (a domain's). */
  readonly projectIds?: readonly string[];
  /** Servers after this one in the listing order (created, id): a marker, as Huawei lists page. */
  readonly afterId?: string;
}

/** Why a server's console access ended (its tokens are revoked with this reason). */
export type ServerEndReason = 'server-stopped' | 'server-deleted' | 'console-changed';

/** The servers a bulk sync owns: one project's, or one availability zone's of that project. */
export interface ServerSyncScope {
  readonly projectId: string;
  readonly availabilityZone?: string;
}

/** What a bulk sync changes, computed from the scope's servers as they are inside its transaction. */
export interface ServerSyncPlan {
  readonly create: readonly Server[];
  readonly update: ReadonlyArray<{ readonly before: Server; readonly after: Server }>;
  readonly delete: readonly Server[];
  /** Servers whose console access ends: their tokens are revoked and a change is appended for every proxy. */
  readonly ended: ReadonlyArray<{ readonly serverId: string; readonly reason: ServerEndReason }>;
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
  /**
   * A bulk sync in one transaction: reads the scope's servers, asks `plan` what to change, and
   * (with `apply`) writes it all: inserts, updates, deletes, token revocations and change-feed
   * entries (with `actor`) of the servers whose access ends. Returns the plan. Either all of it
   * is applied or nothing (an id taken outside the scope: ConflictError).
   */
  syncServers(scope: ServerSyncScope, plan: (current: Server[]) => ServerSyncPlan, opts: { now: number; apply: boolean; actor: string | null }): Promise<ServerSyncPlan>;
}
