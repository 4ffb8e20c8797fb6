/**
 * The server inventory: servers, their status and console targets. Changing a server in a way
 * that ends console access (leaving ACTIVE, new console target, deletion) revokes its console
 * tokens and tells listeners, so that live sessions can be closed.
 */
import { isIP } from 'node:net';
import type { Auditor } from '../audit/auditor.js';
import type { Clock } from '../clock.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Actor } from '../identity/types.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Invalidation } from '../sessions/change-follower.js';
import type { ChangeFeedStore } from '../sessions/types.js';
import { NodeCache, type NodeCacheOptions } from '../util/node-cache.js';
import type { ConsoleTokenStore } from '../tokens/types.js';
import { UUID_RE, uuid } from '../util/ids.js';
import {
  SERVER_STATUSES, TARGET_KINDS, type ConsoleTarget, type ResolvedConsoleTarget, type Server, type ServerEndReason, type ServerFilter, type ServerStatus,
  type ServerStore, type ServerSyncPlan, type ServerSyncScope, type TargetKind,
} from './types.js';

/**
 * Who asks for an operator action, through which door, for its audit record. Every change made
 * by an operator (API or CLI) carries one; changes without one (tests, internal) are not audited.
 */
export interface OperatorContext {
  readonly actor: Actor;
  readonly door: 'api' | 'cli';
  readonly requestId?: string | null;
  readonly clientAddress?: string | null;
}

/** A partial change of a server: only what is given changes (the console target too, field by field). */
export interface ServerUpdate {
  name?: string;
  status?: ServerStatus | string;
  availabilityZone?: string;
  console?: ConsoleTargetInput;
}

/** One server of a bulk sync: the whole desired state (what is absent takes its default). */
export interface ServerSyncItem {
  id: string;
  name: string;
  status?: ServerStatus | string;
  availabilityZone?: string;
  console: ConsoleTargetInput;
}

/** What a bulk sync did (or, in a dry run, would do). */
export interface ServerSyncResult {
  readonly dryRun: boolean;
  readonly scope: ServerSyncScope;
  readonly created: string[];
  readonly updated: Array<{ id: string; changed: string[] }>;
  readonly deleted: string[];
  /** Servers whose tokens are revoked and live sessions closed, and why. */
  readonly revoked: Array<{ id: string; reason: ServerEndReason }>;
  readonly unchanged: number;
}

/** Most servers one bulk sync takes. */
export const SYNC_MAX_SERVERS = 100_000;

/** Why a server's console access ended. */
export type ServerChangeReason = 'server-stopped' | 'server-deleted' | 'console-changed';

export interface ServerChange {
  readonly serverId: string;
  readonly projectId: string;
  readonly reason: ServerChangeReason;
  readonly status: ServerStatus | null;
  /** Who caused it (an operator's credential), when known. */
  readonly actor?: string | null;
}

/** Receives changes that end console access, in this process (every node learns them from the change feed). */
export type ServerChangeSink = (change: ServerChange) => Promise<void> | void;

/**
 * A console target as an operator gives it (CLI flags, an API body): flat, every field optional
 * but those its kind needs. {@link validateConsoleTarget} checks it and says what is wrong.
 */
export interface ConsoleTargetInput {
  /** Default `static`. */
  kind?: TargetKind | string;
  /** VNC host (static, qemu-qmp; libvirt: only to override the address from the domain's XML). */
  host?: string | null;
  /** VNC port (static, qemu-qmp). */
  port?: number | null;
  /** Static targets only: `none` or `vnc-password` (the default when a password is given). */
  auth?: 'none' | 'vnc-password' | string | null;
  /** Static targets with `vnc-password`: the VNC password (1-8 bytes). */
  password?: string | null;
  /** qemu-qmp: the QMP monitor, `unix:/path` (or `/path`) or `tcp:host:port` (or `host:port`). */
  qmp?: string | null;
  /** libvirt: the connection URI, e.g. `qemu:///system`. */
  uri?: string | null;
  /** libvirt: the domain's name or UUID. */
  domain?: string | null;
  /** The serial port (any kind): `unix:/path` or `tcp:host:port`; absent or null: none. */
  serial?: string | null;
  /** Require TLS (VeNCrypt with X.509 certificates) to the VNC server. */
  tls?: boolean | null;
  /** The name the VNC server's certificate must carry; default the host. Implies `tls`. */
  tlsName?: string | null;
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

/** A console target's checked fields, the static password still in clear (the service seals it). */
export type ValidatedTarget = { target: ConsoleTarget; password: string | null };

function validHost(raw: string, field: string, what: string): string {
  const host = raw.trim();
  if (!(isIP(host) !== 0 || HOST_RE.test(host))) throw new ValidationError(`${what} ${JSON.stringify(raw)} is not a host name or IP address`, field);
  return host;
}

function validPort(port: unknown, field: string, what: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new ValidationError(`${what} must be 1-65535`, field);
  return port;
}

/** `unix:/abs/path` or `tcp:host:port` from either form with or without its prefix. */
function normaliseQmp(raw: string): string {
  return normaliseSocket(raw, 'qmp', 'QMP');
}

/** A socket address (QMP monitor, serial port) in its normal form; ValidationError names `field`. */
export function normaliseSocket(raw: string, field: string, what: string): string {
  const v = raw.trim();
  const path = v.startsWith('unix:') ? v.slice(5) : v.startsWith('/') ? v : null;
  if (path !== null) {
    // sun_path holds 108 bytes with the terminating NUL (unix(7)).
    if (!path.startsWith('/') || Buffer.byteLength(path) > 107 || /[\u0000-\u001f\u007f]/.test(path)) {
      throw new ValidationError(`the ${what} socket must be an absolute path of at most 107 bytes (unix:/run/qemu/vm1.${field})`, field);
    }
    return `unix:${path}`;
  }
  const hp = v.startsWith('tcp:') ? v.slice(4) : v;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:]+)):(\d{1,5})$/.exec(hp);
  if (!m) throw new ValidationError(`${what} ${field === 'qmp' ? 'monitor' : 'port'} ${JSON.stringify(raw)} is neither unix:/path nor tcp:host:port`, field);
  const host = validHost(m[1] ?? m[2]!, field, `${what} host`);
  const port = validPort(Number(m[3]), field, `${what} port`);
  return `tcp:${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s]{0,1000}$/;
/** libvirt domain names: no leading dash (virsh would read it as an option), no slash or control character. */
const DOMAIN_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,254}$/;

/**
 * Checks a console target as an operator gives it and returns it normalised (hosts trimmed, QMP
 * address with its prefix, the TLS name filled in). Throws ValidationError naming the field.
 * Shared by every door that adds or changes servers (CLI, admin API).
 */
export function validateConsoleTarget(t: ConsoleTargetInput): ValidatedTarget {
  const v = validateVncTarget(t);
  const serial = t.serial === undefined || t.serial === null || t.serial === '' ? null : normaliseSocket(t.serial, 'serial', 'serial');
  return serial === null ? v : { ...v, target: { ...v.target, serial } };
}

function validateVncTarget(t: ConsoleTargetInput): ValidatedTarget {
  const kind = (t.kind ?? 'static') as TargetKind;
  if (!(TARGET_KINDS as readonly string[]).includes(kind)) throw new ValidationError(`console kind must be one of ${TARGET_KINDS.join(', ')}`, 'kind');
  const given = (v: unknown): boolean => v !== undefined && v !== null && v !== '';
  const refuse = (fields: Array<keyof ConsoleTargetInput>, why: string): void => {
    for (const f of fields) if (given(t[f])) throw new ValidationError(`${f} ${why}`, f);
  };
  const wantTls = t.tls === true || given(t.tlsName);
  const tlsFor = (defaultName: string | null): ConsoleTarget['tls'] => {
    if (!wantTls) return null;
    const name = given(t.tlsName) ? validHost(t.tlsName!, 'tlsName', 'TLS name') : defaultName;
    if (name === null) throw new ValidationError('TLS needs the name the VNC server\'s certificate carries (tlsName): the target has no host to default to', 'tlsName');
    return { serverName: name };
  };
  if (kind === 'static') {
    refuse(['qmp', 'uri', 'domain'], 'is not part of a static target');
    if (!given(t.host)) throw new ValidationError('a static target needs a VNC host', 'host');
    const host = validHost(t.host!, 'host', 'console host');
    const port = validPort(t.port, 'port', 'console port');
    const auth = t.auth ?? (given(t.password) ? 'vnc-password' : 'none');
    if (auth !== 'none' && auth !== 'vnc-password') throw new ValidationError('console auth must be none or vnc-password', 'auth');
    if (auth === 'vnc-password') {
      // RFC 6143 7.2.2: VNC Authentication uses at most 8 bytes of the password.
      if (!t.password || t.password.length > 8 || Buffer.byteLength(t.password) > 8) throw new ValidationError('vnc-password needs a password of 1-8 bytes', 'password');
    } else if (t.password) {
      throw new ValidationError('a password needs --auth vnc-password', 'password');
    }
    return { target: { kind, host, port, auth, passwordSealed: null, tls: tlsFor(host) }, password: auth === 'vnc-password' ? t.password! : null };
  }
  refuse(['auth', 'password'], `is not part of a ${kind} target: it gets a fresh password for each session`);
  if (kind === 'qemu-qmp') {
    refuse(['uri', 'domain'], 'is not part of a qemu-qmp target');
    if (!given(t.host)) throw new ValidationError('a qemu-qmp target needs the VNC host', 'host');
    const host = validHost(t.host!, 'host', 'console host');
    const port = validPort(t.port, 'port', 'console port');
    if (!given(t.qmp)) throw new ValidationError('a qemu-qmp target needs the QMP monitor (unix:/path or tcp:host:port)', 'qmp');
    return { target: { kind, host, port, qmp: normaliseQmp(t.qmp!), auth: 'one-time-password', passwordSealed: null, tls: tlsFor(host) }, password: null };
  }
  refuse(['qmp'], 'is not part of a libvirt target');
  refuse(['port'], 'is not part of a libvirt target: it comes from the domain\'s live XML');
  if (!given(t.uri) || !URI_RE.test(t.uri!.trim())) throw new ValidationError('a libvirt target needs a connection URI such as qemu:///system', 'uri');
  if (!given(t.domain) || !DOMAIN_RE.test(t.domain!.trim())) throw new ValidationError('a libvirt target needs a domain name or UUID (letters, digits, _ . : + -, not starting with -)', 'domain');
  const uri = t.uri!.trim();
  const host = given(t.host) ? validHost(t.host!, 'host', 'console host') : null;
  let uriHost: string | null = null;
  try {
    uriHost = new URL(uri).hostname.replace(/^\[|\]$/g, '') || null;
  } catch {
    // A URI the URL parser does not take (libvirt's own syntax is looser): no host to default to.
  }
  return { target: { kind, uri, domain: t.domain!.trim(), host, auth: 'one-time-password', passwordSealed: null, tls: tlsFor(host ?? uriHost) }, password: null };
}

/** Where a console target is, in one line: `host:port`, `host:port qmp unix:/...`, `libvirt qemu:///system vm1`. */
export function describeTarget(c: ConsoleTarget): string {
  const tls = c.tls ? ` tls=${c.tls.serverName}` : '';
  const serial = c.serial ? ` serial=${c.serial}` : '';
  switch (c.kind) {
    case 'static': return `${c.host}:${c.port}${tls}${serial}`;
    case 'qemu-qmp': return `${c.host}:${c.port} qmp=${c.qmp}${tls}${serial}`;
    case 'libvirt': return `${c.uri} ${c.domain}${c.host ? ` host=${c.host}` : ''}${tls}${serial}`;
  }
}

/** JSON with keys sorted at every level: equal for equal targets whatever order their fields were built in. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

function validName(raw: string): string {
  const name = typeof raw === 'string' ? raw.trim() : '';
  if (name.length === 0 || name.length > 255 || /[\u0000-\u001f\u007f]/.test(name)) throw new ValidationError('server name must be 1-255 printable characters', 'name');
  return name;
}

function validAz(az: string): string {
  if (typeof az !== 'string' || !AZ_RE.test(az)) throw new ValidationError('availability zone must be 1-64 letters, digits, . _ -', 'availability-zone');
  return az;
}

export function parseStatus(s: string): ServerStatus {
  const up = typeof s === 'string' ? s.toUpperCase() : '';
  if (!(SERVER_STATUSES as readonly string[]).includes(up)) throw new ValidationError(`status must be one of ${SERVER_STATUSES.join(', ')}`, 'status');
  return up as ServerStatus;
}

export class InventoryService {
  private readonly sinks: ServerChangeSink[] = [];
  private readonly cache: NodeCache<Server>;

  constructor(
    private readonly servers: ServerStore,
    private readonly tokens: ConsoleTokenStore,
    private readonly changes: ChangeFeedStore,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly auditor: Auditor | null = null,
    /** The node's cache of ACTIVE servers for console requests (see findServerForConsole); off by default. */
    cache: Pick<NodeCacheOptions, 'maxEntries' | 'maxAgeMs' | 'trusted'> = { maxEntries: 0, maxAgeMs: 0, trusted: () => false },
  ) {
    this.cache = new NodeCache(cache);
  }

  /**
   * Drops what a change makes stale: a server whose sessions a change ends, one changed otherwise
   * (`record-changed`, `server:<id>`; null: every server), `all` everything.
   */
  invalidate(i: Invalidation): void {
    if (i === 'all') return this.cache.clear();
    if (i.serverId) this.cache.delete(i.serverId);
    if (i.kind === 'record-changed') {
      if (i.credential?.startsWith('server:')) this.cache.delete(i.credential.slice(7));
      else if (!i.credential) this.cache.clear();
    }
  }

  /** Cache counters, for the benchmarks. */
  cacheStats(): { hits: number; misses: number; size: number } {
    return { hits: this.cache.hits, misses: this.cache.misses, size: this.cache.size };
  }

  /**
   * The server for a console request (remote_console): from the node's cache when it may be
   * served. Only ACTIVE servers are kept: a stopped or missing one is read from the store every
   * time, so starting or creating it needs no invalidation; stopping, deleting, moving or any
   * other change of a kept one is a change on the feed that drops it on every node.
   */
  async findServerForConsole(id: string): Promise<Server | null> {
    if (!UUID_RE.test(id)) return null;
    return this.cache.get(id, () => this.servers.getServer(id), (s) => s.status === 'ACTIVE');
  }

  /** Tells every node's cache that `serverId` (null: several servers) changed without ending its sessions. */
  private async changed(serverId: string | null, ctx?: OperatorContext): Promise<void> {
    if (serverId) this.cache.delete(serverId);
    else this.cache.clear();
    await this.changes.appendChange({
      at: this.clock.now(), kind: 'record-changed', serverId: null, sessionId: null, credential: serverId ? `server:${serverId}` : null, actor: ctx?.actor.credential ?? null,
    });
  }

  /** Records an operator action (when a context says who acted). */
  private async audit(ctx: OperatorContext | undefined, action: string, s: Pick<Server, 'id' | 'projectId'> | { project: string } | null, detail: Record<string, string | number | boolean | null>): Promise<void> {
    if (!ctx || !this.auditor) return;
    // A server's action names the server; a project's (a sync) names the project, so a search by
    // project (an administrator's, which is limited to its domain's projects) finds it.
    const server = s && 'id' in s ? s : null;
    const projectId = server ? server.projectId : s && 'project' in s ? s.project : null;
    await this.auditor.record('operator', {
      projectId, serverId: server?.id ?? null, target: server ? `server:${server.id}` : projectId ? `project:${projectId}` : null,
      actorUserId: ctx.actor.userId, actorCredential: ctx.actor.credential, requestId: ctx.requestId ?? null,
      clientAddress: ctx.clientAddress ?? null, outcome: 'ok', detail: { action, door: ctx.door, ...detail },
    });
  }

  /** Registers a listener for changes that end console access. */
  onChange(sink: ServerChangeSink): void {
    this.sinks.push(sink);
  }

  private sealTarget(serverId: string, t: ConsoleTargetInput): ConsoleTarget {
    const { target, password } = validateConsoleTarget(t);
    if (target.kind !== 'static' || password === null) return target;
    return { ...target, passwordSealed: this.box.seal(password, `vnc:${serverId}`) };
  }

  /** The server's console target with its stored password opened, for the backend drivers only. */
  resolveTarget(server: Server): ResolvedConsoleTarget {
    const sealed = server.console.passwordSealed;
    return { serverId: server.id, console: server.console, password: sealed ? this.box.open(sealed, `vnc:${server.id}`) : null };
  }

  async addServer(input: AddServerInput, ctx?: OperatorContext): Promise<Server> {
    const id = input.id ?? uuid();
    if (!UUID_RE.test(id)) throw new ValidationError('server id must be a lower-case UUID', 'id');
    const name = validName(input.name);
    const az = validAz(input.availabilityZone ?? 'az1');
    const now = this.clock.now();
    const s: Server = {
      id, projectId: input.projectId, name, status: input.status ?? 'ACTIVE', availabilityZone: az,
      createdAt: now, updatedAt: now, console: this.sealTarget(id, input.console), consoleRevision: 1,
    };
    await this.servers.insertServer(s);
    await this.audit(ctx, 'server-create', s, { name: s.name, status: s.status, availabilityZone: s.availabilityZone, console: describeTarget(s.console) });
    return s;
  }

  /**
   * Changes only what `u` gives: the name, the status, the zone, and console target fields one
   * by one (the rest of the target stays). A new password for a target that stays where it was
   * leaves live sessions and issued URLs alone; a new place for the target ends them, as does
   * leaving ACTIVE.
   */
  async updateServer(id: string, u: ServerUpdate, ctx?: OperatorContext): Promise<Server> {
    const before = await this.getServer(id);
    const patch: { name?: string; status?: ServerStatus; availabilityZone?: string; console?: ConsoleTarget; keepConsoleRevision?: boolean } = {};
    const changed: string[] = [];
    if (u.name !== undefined && validName(u.name) !== before.name) { patch.name = validName(u.name); changed.push('name'); }
    if (u.status !== undefined && parseStatus(u.status) !== before.status) { patch.status = parseStatus(u.status); changed.push('status'); }
    if (u.availabilityZone !== undefined && validAz(u.availabilityZone) !== before.availabilityZone) { patch.availabilityZone = validAz(u.availabilityZone); changed.push('availabilityZone'); }
    let consoleMoved = false;
    if (u.console !== undefined) {
      const merged = this.mergeTarget(before, u.console);
      const diff = this.compareTarget(before, merged);
      if (diff !== 'same') {
        patch.console = this.sealValidated(id, merged);
        patch.keepConsoleRevision = diff === 'password';
        consoleMoved = diff === 'moved';
        changed.push(diff === 'password' ? 'console.password' : 'console');
      }
    }
    if (changed.length === 0) return before;
    const r = await this.servers.updateServer(id, patch, this.clock.now());
    if (!r) throw new NotFoundError('server', id);
    await this.audit(ctx, 'server-update', r.after, { changed: changed.join(','), console: describeTarget(r.after.console), status: r.after.status });
    if (r.after.status !== 'ACTIVE' && r.before.status === 'ACTIVE') await this.ended(r.after, 'server-stopped', ctx);
    else if (consoleMoved) await this.ended(r.after, 'console-changed', ctx);
    else if (r.before.status === 'ACTIVE') await this.changed(r.after.id, ctx);
    return r.after;
  }

  /** The target as an operator would give it in full: the current one, opened, with `given` on top. */
  private mergeTarget(s: Server, given: ConsoleTargetInput): ValidatedTarget {
    const c = s.console;
    const kind = given.kind ?? c.kind;
    if (kind !== c.kind) return validateConsoleTarget(given);
    const current: ConsoleTargetInput = {
      kind: c.kind, host: c.host, port: c.kind === 'libvirt' ? null : c.port, tls: c.tls !== null, tlsName: c.tls?.serverName ?? null, serial: c.serial ?? null,
      ...(c.kind === 'static' ? { auth: c.auth, password: c.passwordSealed ? this.box.open(c.passwordSealed, `vnc:${s.id}`) : null } : {}),
      ...(c.kind === 'qemu-qmp' ? { qmp: c.qmp } : {}),
      ...(c.kind === 'libvirt' ? { uri: c.uri, domain: c.domain } : {}),
    };
    const merged: ConsoleTargetInput = { ...current };
    for (const [k, v] of Object.entries(given) as Array<[keyof ConsoleTargetInput, unknown]>) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    // A new password alone turns VNC authentication on; `auth: none` alone drops the password.
    if (given.password && given.auth === undefined) merged.auth = 'vnc-password';
    if (given.auth === 'none' && given.password === undefined) merged.password = null;
    // A TLS name follows a new host unless given (it defaulted to the host).
    if (given.host !== undefined && given.tlsName === undefined && c.tls && c.tls.serverName === c.host) merged.tlsName = null;
    return validateConsoleTarget(merged);
  }

  /** `same`, `password` (only the VNC authentication or its password differs), or `moved` (anything else). */
  private compareTarget(s: Server, v: ValidatedTarget): 'same' | 'password' | 'moved' {
    // The VNC authentication alone (none or a password) is not a new place: sessions open stay.
    if (canonical({ ...s.console, passwordSealed: null, auth: null, serial: s.console.serial ?? null }) !== canonical({ ...v.target, passwordSealed: null, auth: null, serial: v.target.serial ?? null })) return 'moved';
    const current = s.console.passwordSealed ? this.box.open(s.console.passwordSealed, `vnc:${s.id}`) : null;
    return current === v.password ? 'same' : 'password';
  }

  private sealValidated(serverId: string, v: ValidatedTarget): ConsoleTarget {
    if (v.target.kind !== 'static' || v.password === null) return v.target;
    return { ...v.target, passwordSealed: this.box.seal(v.password, `vnc:${serverId}`) };
  }

  /**
   * Bulk sync: `items` is the whole desired list of the scope's servers. In one transaction,
   * servers absent from the list are deleted, new ones created, changed ones updated, and the
   * console access that a change ends is revoked (every proxy closes those sessions). Running it
   * again with the same list changes nothing. `dryRun`: the plan only.
   */
  async syncServers(scope: ServerSyncScope, items: readonly ServerSyncItem[], opts: { dryRun?: boolean } = {}, ctx?: OperatorContext): Promise<ServerSyncResult> {
    if (scope.availabilityZone !== undefined) validAz(scope.availabilityZone);
    if (items.length > SYNC_MAX_SERVERS) throw new ValidationError(`a sync takes at most ${SYNC_MAX_SERVERS} servers`, 'servers');
    const desired = new Map<string, { item: ServerSyncItem; name: string; status: ServerStatus; az: string; target: ValidatedTarget }>();
    items.forEach((item, i) => {
      const at = (f: string): string => `servers[${i}].${f}`;
      try {
        if (typeof item.id !== 'string' || !UUID_RE.test(item.id)) throw new ValidationError('server id must be a lower-case UUID', 'id');
        if (desired.has(item.id)) throw new ValidationError(`server id ${item.id} is listed twice`, 'id');
        const az = validAz(item.availabilityZone ?? scope.availabilityZone ?? 'az1');
        if (scope.availabilityZone !== undefined && az !== scope.availabilityZone) {
          throw new ValidationError(`availability zone ${az} is not the zone being synced (${scope.availabilityZone})`, 'availabilityZone');
        }
        desired.set(item.id, {
          item, name: validName(item.name), status: item.status === undefined ? 'ACTIVE' : parseStatus(item.status), az,
          target: validateConsoleTarget(item.console ?? {}),
        });
      } catch (e) {
        if (e instanceof ValidationError) throw new ValidationError(`${at(e.field ?? 'server')}: ${e.message}`, at(e.field ?? 'server'));
        throw e;
      }
    });
    const now = this.clock.now();
    const changedFields = new Map<string, string[]>();
    let unchanged = 0;
    const plan = (current: Server[]): ServerSyncPlan => {
      unchanged = 0;
      changedFields.clear();
      const byId = new Map(current.map((s) => [s.id, s]));
      const create: Server[] = [];
      const update: Array<{ before: Server; after: Server }> = [];
      const ended: Array<{ serverId: string; reason: ServerEndReason }> = [];
      for (const [id, d] of desired) {
        const before = byId.get(id);
        if (!before) {
          create.push({
            id, projectId: scope.projectId, name: d.name, status: d.status, availabilityZone: d.az, createdAt: now, updatedAt: now,
            console: this.sealValidated(id, d.target), consoleRevision: 1,
          });
          continue;
        }
        const changed: string[] = [];
        if (before.name !== d.name) changed.push('name');
        if (before.status !== d.status) changed.push('status');
        if (before.availabilityZone !== d.az) changed.push('availabilityZone');
        const diff = this.compareTarget(before, d.target);
        if (diff !== 'same') changed.push(diff === 'password' ? 'console.password' : 'console');
        if (changed.length === 0) {
          unchanged++;
          continue;
        }
        changedFields.set(id, changed);
        const after: Server = {
          ...before, name: d.name, status: d.status, availabilityZone: d.az, updatedAt: now,
          console: diff === 'same' ? before.console : this.sealValidated(id, d.target),
          consoleRevision: diff === 'moved' ? before.consoleRevision + 1 : before.consoleRevision,
        };
        update.push({ before, after });
        if (before.status === 'ACTIVE' && after.status !== 'ACTIVE') ended.push({ serverId: id, reason: 'server-stopped' });
        else if (diff === 'moved') ended.push({ serverId: id, reason: 'console-changed' });
      }
      const del = current.filter((s) => !desired.has(s.id));
      for (const s of del) ended.push({ serverId: s.id, reason: 'server-deleted' });
      return { create, update, delete: del, ended };
    };
    const dryRun = opts.dryRun === true;
    const p = await this.servers.syncServers(scope, plan, { now, apply: !dryRun, actor: ctx?.actor.credential ?? null });
    const result: ServerSyncResult = {
      dryRun, scope,
      created: p.create.map((s) => s.id),
      updated: p.update.map((u) => ({ id: u.after.id, changed: changedFields.get(u.after.id) ?? [] })),
      deleted: p.delete.map((s) => s.id),
      revoked: p.ended.map((e) => ({ id: e.serverId, reason: e.reason })),
      unchanged,
    };
    await this.audit(ctx, dryRun ? 'servers-sync-plan' : 'servers-sync', { project: scope.projectId }, {
      projectId: scope.projectId, availabilityZone: scope.availabilityZone ?? null, servers: items.length,
      created: result.created.length, updated: result.updated.length, deleted: result.deleted.length, revoked: result.revoked.length,
    });
    if (!dryRun) {
      // Updates that end nothing (a name, a zone, a VNC password): the caches drop every server.
      const ending = new Set(p.ended.map((e) => e.serverId));
      if (p.update.some((u) => !ending.has(u.after.id))) await this.changed(null, ctx);
      // The store appended the changes for every node; this process's listeners hear them now.
      const gone = new Map(p.delete.map((s) => [s.id, s]));
      const after = new Map(p.update.map((u) => [u.after.id, u.after]));
      for (const e of p.ended) {
        const s = after.get(e.serverId) ?? gone.get(e.serverId);
        if (s) await this.tell({ serverId: s.id, projectId: s.projectId, reason: e.reason, status: e.reason === 'server-deleted' ? null : s.status, actor: ctx?.actor.credential ?? null });
      }
    }
    return result;
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

  async setStatus(id: string, status: ServerStatus, ctx?: OperatorContext): Promise<Server> {
    await this.getServer(id);
    const r = await this.servers.updateServer(id, { status }, this.clock.now());
    if (!r) throw new NotFoundError('server', id);
    await this.audit(ctx, 'server-update', r.after, { changed: 'status', status: r.after.status });
    if (r.after.status !== 'ACTIVE') await this.ended(r.after, 'server-stopped', ctx);
    return r.after;
  }

  /** Replaces the console target whole; any change ends live sessions (see updateServer for a partial change). */
  async setConsole(id: string, target: ConsoleTargetInput, ctx?: OperatorContext): Promise<Server> {
    await this.getServer(id);
    const r = await this.servers.updateServer(id, { console: this.sealTarget(id, target) }, this.clock.now());
    if (!r) throw new NotFoundError('server', id);
    await this.audit(ctx, 'server-update', r.after, { changed: 'console', console: describeTarget(r.after.console) });
    await this.ended(r.after, 'console-changed', ctx);
    return r.after;
  }

  async removeServer(id: string, ctx?: OperatorContext): Promise<Server> {
    const s = UUID_RE.test(id) ? await this.servers.deleteServer(id) : null;
    if (!s) throw new NotFoundError('server', id);
    await this.audit(ctx, 'server-delete', s, { name: s.name });
    await this.ended(s, 'server-deleted', ctx);
    return s;
  }

  private async ended(s: Server, reason: ServerChangeReason, ctx?: OperatorContext): Promise<void> {
    // Revoked tokens are kept until they expire, with the reason: their holders hear what happened.
    await this.tokens.revokeServerConsoleTokens(s.id, reason, this.clock.now());
    // Every proxy node follows the feed and closes this server's live sessions.
    await this.changes.appendChange({ at: this.clock.now(), kind: reason, serverId: s.id, sessionId: null, actor: ctx?.actor.credential ?? null });
    await this.tell({ serverId: s.id, projectId: s.projectId, reason, status: reason === 'server-deleted' ? null : s.status, actor: ctx?.actor.credential ?? null });
  }

  private async tell(change: ServerChange): Promise<void> {
    // This node's cache at once (the others' through the feed).
    this.cache.delete(change.serverId);
    for (const sink of this.sinks) await sink(change);
  }
}
