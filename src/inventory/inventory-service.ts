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
import {
  SERVER_STATUSES, TARGET_KINDS, type ConsoleTarget, type ResolvedConsoleTarget, type Server, type ServerFilter, type ServerStatus, type ServerStore, type TargetKind,
} from './types.js';

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
    const { target, password } = validateConsoleTarget(t);
    if (target.kind !== 'static' || password === null) return target;
    return { ...target, passwordSealed: this.box.seal(password, `vnc:${serverId}`) };
  }

  /** The server's console target with its stored password opened, for the backend drivers only. */
  resolveTarget(server: Server): ResolvedConsoleTarget {
    const sealed = server.console.passwordSealed;
    return { serverId: server.id, console: server.console, password: sealed ? this.box.open(sealed, `vnc:${server.id}`) : null };
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
