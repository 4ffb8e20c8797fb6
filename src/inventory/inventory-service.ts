/**
 * The server inventory: servers, their status and console targets. Changing a server in a way
 * that ends console access (leaving ACTIVE, new console target, deletion) revokes its console
 * tokens and tells listeners, so that live sessions can be closed.
 */
import { isIP } from 'node:net';
import type { Clock } from '../clock.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { ChangeFeedStore } from '../sessions/types.js';
import type { ConsoleTokenStore } from '../tokens/types.js';
import { UUID_RE, uuid } from '../util/ids.js';
import { SERVER_STATUSES, type BackendAuth, type ConsoleTarget, type Server, type ServerFilter, type ServerStatus, type ServerStore } from './types.js';

/** Why a server's console access ended. */
export type ServerChangeReason = 'server-stopped' | 'server-deleted' | 'console-changed';

export interface ServerChange {
  readonly serverId: string;
  readonly projectId: string;
  readonly reason: ServerChangeReason;
  readonly status: ServerStatus | null;
}

/** Receives changes that end console access, in this process (every node learns them from the change feed). */
export type ServerChangeSink = (change: ServerChange) => Promise<void> | void;

export interface ConsoleTargetInput {
  host: string;
  port: number;
  auth: BackendAuth;
  password?: string | null;
}

export interface AddServerInput {
  projectId: string;
  name: string;
  id?: string;
  status?: ServerStatus;
  availabilityZone?: string;
  console: ConsoleTargetInput;
}

const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const AZ_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function parseStatus(s: string): ServerStatus {
  const up = s.toUpperCase();
  if (!(SERVER_STATUSES as readonly string[]).includes(up)) throw new ValidationError(`status must be one of ${SERVER_STATUSES.join(', ')}`, 'status');
  return up as ServerStatus;
}

export class InventoryService {
  private readonly sinks: ServerChangeSink[] = [];

  constructor(
    private readonly servers: ServerStore,
    private readonly tokens: ConsoleTokenStore,
    private readonly changes: ChangeFeedStore,
    private readonly box: SecretBox,
    private readonly clock: Clock,
  ) {}

  /** Registers a listener for changes that end console access. */
  onChange(sink: ServerChangeSink): void {
    this.sinks.push(sink);
  }

  private sealTarget(serverId: string, t: ConsoleTargetInput): ConsoleTarget {
    const host = t.host.trim();
    if (!(isIP(host) !== 0 || HOST_RE.test(host))) throw new ValidationError(`console host ${JSON.stringify(t.host)} is not a host name or IP address`, 'host');
    if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new ValidationError('console port must be 1-65535', 'port');
    if (t.auth !== 'none' && t.auth !== 'vnc-password') throw new ValidationError('console auth must be none or vnc-password', 'auth');
    if (t.auth === 'vnc-password') {
      // RFC 6143 7.2.2: VNC Authentication uses at most 8 bytes of the password.
      if (!t.password || t.password.length > 8 || Buffer.byteLength(t.password) > 8) throw new ValidationError('vnc-password needs a password of 1-8 bytes', 'password');
    } else if (t.password) {
      throw new ValidationError('a password needs --auth vnc-password', 'password');
    }
    return {
      host, port: t.port, auth: t.auth,
      passwordSealed: t.auth === 'vnc-password' ? this.box.seal(t.password!, `vnc:${serverId}`) : null,
    };
  }

  /** The backend VNC password in clear, for the proxy only. */
  backendPassword(server: Server): string | null {
    return server.console.passwordSealed ? this.box.open(server.console.passwordSealed, `vnc:${server.id}`) : null;
  }

  async addServer(input: AddServerInput): Promise<Server> {
    const id = input.id ?? uuid();
    if (!UUID_RE.test(id)) throw new ValidationError('server id must be a lower-case UUID', 'id');
    const name = input.name.trim();
    if (name.length === 0 || name.length > 255 || /[\u0000-\u001f\u007f]/.test(name)) throw new ValidationError('server name must be 1-255 printable characters', 'name');
    const az = input.availabilityZone ?? 'az1';
    if (!AZ_RE.test(az)) throw new ValidationError('availability zone must be 1-64 letters, digits, . _ -', 'availability-zone');
    const now = this.clock.now();
    const s: Server = {
      id, projectId: input.projectId, name, status: input.status ?? 'ACTIVE', availabilityZone: az,
      createdAt: now, updatedAt: now, console: this.sealTarget(id, input.console), consoleRevision: 1,
    };
    await this.servers.insertServer(s);
    return s;
  }

  async getServer(id: string): Promise<Server> {
    const s = UUID_RE.test(id) ? await this.servers.getServer(id) : null;
    if (!s) throw new NotFoundError('server', id);
    return s;
  }

  /** The server if it exists, else null (ids that cannot exist are not looked up). */
  async findServer(id: string): Promise<Server | null> {
    return UUID_RE.test(id) ? this.servers.getServer(id) : null;
  }

  listServers(filter: ServerFilter): Promise<Server[]> {
    return this.servers.listServers(filter);
  }

  countServers(filter: ServerFilter): Promise<number> {
    return this.servers.countServers(filter);
  }

  async setStatus(id: string, status: ServerStatus): Promise<Server> {
    await this.getServer(id);
    const r = await this.servers.updateServer(id, { status }, this.clock.now());
    if (!r) throw new NotFoundError('server', id);
    if (r.after.status !== 'ACTIVE') await this.ended(r.after, 'server-stopped');
    return r.after;
  }

  async setConsole(id: string, target: ConsoleTargetInput): Promise<Server> {
    await this.getServer(id);
    const r = await this.servers.updateServer(id, { console: this.sealTarget(id, target) }, this.clock.now());
    if (!r) throw new NotFoundError('server', id);
    await this.ended(r.after, 'console-changed');
    return r.after;
  }

  async removeServer(id: string): Promise<Server> {
    const s = UUID_RE.test(id) ? await this.servers.deleteServer(id) : null;
    if (!s) throw new NotFoundError('server', id);
    await this.ended(s, 'server-deleted');
    return s;
  }

  private async ended(s: Server, reason: ServerChangeReason): Promise<void> {
    // Revoked tokens are kept until they expire, with the reason: their holders hear what happened.
    await this.tokens.revokeServerConsoleTokens(s.id, reason, this.clock.now());
    // Every proxy node follows the feed and closes this server's live sessions.
    await this.changes.appendChange({ at: this.clock.now(), kind: reason, serverId: s.id, sessionId: null });
    const change: ServerChange = { serverId: s.id, projectId: s.projectId, reason, status: reason === 'server-deleted' ? null : s.status };
    for (const sink of this.sinks) await sink(change);
  }
}
