/**
 * The Nova-compatible compute API (Huawei's native OpenStack paths, `/v2.1/{project_id}/...`), for
 * OpenStack clients (the `openstack` CLI, openstacksdk, gophercloud, Terraform's provider) over the
 * same identities, tokens and inventory as the Huawei API:
 *
 * - version discovery: `GET /`, `GET /v2.1` (and `/v2.1/{project_id}`, which keystoneauth asks);
 * - microversions 2.1 to {@link MAX_MICROVERSION}: `OpenStack-API-Version: compute 2.x` or the
 *   legacy `X-OpenStack-Nova-API-Version: 2.x` (`latest` allowed), echoed in both headers;
 * - `GET /servers`, `/servers/detail`, `/servers/{id}`;
 * - `POST /servers/{id}/action`: `os-getVNCConsole`, `os-getSerialConsole`, `os-getConsoleOutput`;
 * - `POST /servers/{id}/remote-consoles` (2.6+): protocol `vnc` type `novnc`, `serial` type `serial`;
 * - `GET /os-console-auth-tokens/{token}` (2.31+, domain administrators only);
 * - errors in Nova's bodies: `{"itemNotFound": {"code": 404, "message": "..."}}`.
 */
import type { ErrorObject } from 'ajv';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, ForbiddenError, RateLimitedError, isConsoleError } from '../errors.js';
import type { IdentityService } from '../identity/identity-service.js';
import { ACTION_GET, ACTION_LIST, ACTION_VNC, type Principal } from '../identity/types.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { ConsoleOutputService } from '../serial/console-output-service.js';
import type { ConsoleTokenService } from '../tokens/console-token-service.js';
import type { RemoteConsoleService } from '../tokens/remote-console-service.js';
import { bodyProblem, declaredBody, isObject } from './body.js';
import { consoleRequest, huaweiTime } from './ecs-routes.js';
import { declaredInt } from './query.js';
import { DISCOVERY, NOVA } from './route-docs.js';

export const MIN_MICROVERSION = '2.1';
/** The newest microversion answered: 2.6 remote-consoles, 2.31 console auth tokens, 2.47 embedded flavors. */
export const MAX_MICROVERSION = '2.60';
const VERSION_UPDATED = '2013-07-23T11:33:21Z';

/** Nova's fault names by status (nova/api/openstack/wsgi.py). */
const FAULT: Record<number, string> = {
  400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound', 405: 'badMethod', 409: 'conflictingRequest',
  413: 'overLimit', 415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented', 503: 'serviceUnavailable',
};

/** An error answered in Nova's shape. */
export class NovaError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export type Microversion = readonly [number, number];

function parseVersion(s: string): Microversion | null {
  const m = /^(\d{1,3})\.(\d{1,3})$/.exec(s);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

const MIN = parseVersion(MIN_MICROVERSION)!;
const MAX = parseVersion(MAX_MICROVERSION)!;
const cmp = (a: Microversion, b: Microversion): number => a[0] - b[0] || a[1] - b[1];
export const atLeast = (v: Microversion, s: string): boolean => cmp(v, parseVersion(s)!) >= 0;

/**
 * The request's microversion: `OpenStack-API-Version: compute X.Y` first, then the legacy header;
 * 2.1 without either. NovaError 400 for a malformed one, 406 outside 2.1..MAX.
 */
export function requestedMicroversion(headers: Record<string, string | string[] | undefined>): Microversion {
  const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h.join(',') : h);
  let raw: string | undefined;
  const modern = one(headers['openstack-api-version']);
  if (modern !== undefined) {
    for (const part of modern.split(',')) {
      const [service, version] = part.trim().split(/\s+/, 2);
      if (service?.toLowerCase() === 'compute' && version) raw = version;
    }
  }
  raw ??= one(headers['x-openstack-nova-api-version'])?.trim();
  if (raw === undefined || raw === '') return MIN;
  if (raw.toLowerCase() === 'latest') return MAX;
  const v = parseVersion(raw);
  if (!v) throw new NovaError(400, `API Version String ${raw} is of invalid format. Must be of format MajorNum.MinorNum.`);
  if (cmp(v, MIN) < 0 || cmp(v, MAX) > 0) {
    throw new NovaError(406, `Version ${raw} is not supported by the API. Minimum is ${MIN_MICROVERSION} and maximum is ${MAX_MICROVERSION}.`);
  }
  return v;
}

const vstr = (v: Microversion): string => `${v[0]}.${v[1]}`;

/** The v2.1 version document (discovery). */
function versionDoc(base: string): Record<string, unknown> {
  return {
    id: 'v2.1', status: 'CURRENT', version: MAX_MICROVERSION, min_version: MIN_MICROVERSION, updated: VERSION_UPDATED,
    links: [{ rel: 'self', href: `${base}/v2.1/` }, { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

/** The caller's base URL as it reached us (behind a load balancer: with trustProxy, its X-Forwarded-* headers). */
export function baseUrlOf(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

const NOVA_STATUS: Record<string, [string, number]> = {
  ACTIVE: ['active', 1], BUILD: ['building', 0], SHUTOFF: ['stopped', 4], REBOOT: ['active', 1], HARD_REBOOT: ['active', 1], REBUILD: ['rebuilding', 0],
  MIGRATING: ['active', 1], RESIZE: ['resized', 1], VERIFY_RESIZE: ['resized', 1], REVERT_RESIZE: ['resized', 1], ERROR: ['error', 0],
  DELETED: ['deleted', 0], SHELVED: ['shelved', 4], SHELVED_OFFLOADED: ['shelved_offloaded', 0], UNKNOWN: ['error', 0],
};

function links(base: string, projectId: string, id: string): unknown[] {
  return [{ rel: 'self', href: `${base}/v2.1/${projectId}/servers/${id}` }, { rel: 'bookmark', href: `${base}/${projectId}/servers/${id}` }];
}

/** A server as Nova's `GET /servers/{id}` answers it at microversion `v` (the fields clients read). */
export function novaServer(s: Server, v: Microversion, base: string): Record<string, unknown> {
  const [vmState, power] = NOVA_STATUS[s.status] ?? ['error', 0];
  const out: Record<string, unknown> = {
    id: s.id, name: s.name, status: s.status, tenant_id: s.projectId, user_id: '',
    created: huaweiTime(s.createdAt), updated: huaweiTime(s.updatedAt), hostId: '', addresses: {}, accessIPv4: '', accessIPv6: '',
    // No image: clients show "N/A (booted from volume)". No flavor of ours: a fixed one.
    image: '',
    flavor: atLeast(v, '2.47')
      ? { original_name: 'console', vcpus: 0, ram: 0, disk: 0, ephemeral: 0, swap: 0, extra_specs: {} }
      : { id: 'console', links: [] },
    key_name: null, metadata: {}, links: links(base, s.projectId, s.id), progress: 0, config_drive: '',
    'OS-DCF:diskConfig': 'MANUAL', 'OS-EXT-AZ:availability_zone': s.availabilityZone,
    'OS-EXT-STS:power_state': power, 'OS-EXT-STS:task_state': null, 'OS-EXT-STS:vm_state': vmState,
    'OS-SRV-USG:launched_at': null, 'OS-SRV-USG:terminated_at': null,
    'os-extended-volumes:volumes_attached': [], security_groups: [],
  };
  if (atLeast(v, '2.9')) out['locked'] = false;
  if (atLeast(v, '2.19')) out['description'] = null;
  if (atLeast(v, '2.26')) out['tags'] = [];
  return out;
}

export interface NovaDeps {
  readonly identity: IdentityService;
  readonly inventory: InventoryService;
  readonly remoteConsole: RemoteConsoleService;
  readonly consoleTokens: ConsoleTokenService;
  readonly consoleOutput?: ConsoleOutputService;
  readonly log: Logger;
  /** Authenticates the caller (IAM token or AK/SK) and sets req.principal. */
  authenticate(req: FastifyRequest): Promise<unknown>;
}

declare module 'fastify' {
  interface FastifyRequest {
    microversion?: Microversion;
  }
}

function sendNova(reply: FastifyReply, status: number, message: string): FastifyReply {
  const name = FAULT[status] ?? 'computeFault';
  return reply.code(status).type('application/json').send({ [name]: { code: status, message } });
}

/** Nova's answer to an error of ours (the message is safe to show: ConsoleErrors never carry secrets). */
function novaError(reply: FastifyReply, e: unknown, log: Logger): FastifyReply {
  if (e instanceof NovaError) return sendNova(reply, e.status, e.message);
  if (e instanceof AuthError) {
    // As keystonemiddleware answers: Keystone's body, and where to authenticate.
    return reply.code(401).header('WWW-Authenticate', 'Keystone uri="/v3"').type('application/json')
      .send({ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
  }
  if (e instanceof ForbiddenError) return sendNova(reply, 403, e.message);
  if (e instanceof RateLimitedError) return sendNova(reply.header('Retry-After', String(e.retryAfterSeconds)), 429, 'This request was rate-limited.');
  if (isConsoleError(e)) {
    switch (e.code) {
      case 'SERVER_NOT_FOUND': return sendNova(reply, 404, e.message.replace(/^Instance\[(.*)\]/, 'Instance $1'));
      case 'BODY_EMPTY': case 'BODY_INVALID': case 'VALIDATION': case 'PROJECT_MISMATCH': return sendNova(reply, 400, e.message);
      case 'BODY_TOO_LARGE': return sendNova(reply, 413, 'Request is too large.');
      case 'STORE_UNAVAILABLE': return sendNova(reply, 503, 'The service is temporarily unavailable; try again shortly.');
      default: break;
    }
  }
  const fe = e as { statusCode?: number };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return sendNova(reply, fe.statusCode === 413 ? 413 : 400, 'The request is malformed.');
  log.error({ err: e }, 'unexpected error');
  return sendNova(reply, 500, 'Unexpected API Error. Please report this at the service\'s administrator and attach the request id if possible.');
}

type P = { project_id: string; server_id: string };

/** A body its route's schema refuses, in Nova's words ("Invalid input for field/attribute ..."). */
function novaInvalid(e: ErrorObject): Error {
  const field = e.instancePath.split('/').filter(Boolean).at(-1);
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    return new NovaError(400, `Invalid input for field/attribute ${field ?? missing}. Value: ${JSON.stringify(e.data)}. '${missing}' is a required property`);
  }
  if (field === undefined) return new NovaError(400, 'Malformed request body');
  return new NovaError(400, `Invalid input for field/attribute ${field}. Value: ${JSON.stringify(e.data ?? null)}. ${bodyProblem(e)}`);
}

export function registerNovaRoutes(app: FastifyInstance, deps: NovaDeps): void {
  const { log } = deps;

  app.get('/', { config: DISCOVERY.root }, async (req, reply) => reply.type('application/json').send({ versions: [versionDoc(baseUrlOf(req))] }));

  void app.register(async (nova) => {
    nova.setErrorHandler((e, req, reply) => novaError(reply, e, log));
    nova.setNotFoundHandler((req, reply) => sendNova(reply, 404, 'The resource could not be found.'));
    nova.addHook('onRequest', async (req, reply) => {
      // Version documents answer without a microversion; everything else echoes it.
      req.microversion = requestedMicroversion(req.headers);
      void reply.headers({
        'OpenStack-API-Version': `compute ${vstr(req.microversion)}`, 'X-OpenStack-Nova-API-Version': vstr(req.microversion),
        Vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
      });
    });

    const doc = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => reply.type('application/json').send({ version: versionDoc(baseUrlOf(req)) });
    nova.get('/', { config: NOVA.version }, doc);

    /** Authenticates and checks the URL's project is the token's (Nova's 400 otherwise). */
    const caller = async (req: FastifyRequest, projectId: string): Promise<Principal> => {
      await deps.authenticate(req);
      const p = req.principal!;
      if (p.projectId !== projectId) {
        throw new NovaError(400, `Malformed request URL: URL's project_id '${projectId}' doesn't match Context's project_id '${p.projectId}'`);
      }
      return p;
    };
    nova.get<{ Params: { project_id: string } }>('/:project_id', { config: NOVA.projectVersion }, async (req, reply) => doc(req, reply));

    const serverOf = async (p: Principal, projectId: string, id: string, action: string): Promise<Server> => {
      deps.identity.authorize(p, projectId, action);
      const s = await deps.inventory.findServer(id);
      // NOTE: another project's server is "not found", as in the Huawei API.
      if (!s || s.projectId !== projectId) throw new NovaError(404, `Instance ${id} could not be found.`);
      return s;
    };

    const list = async (req: FastifyRequest<{ Params: { project_id: string }; Querystring: Record<string, string> }>, detail: boolean): Promise<unknown> => {
      const projectId = req.params.project_id;
      const p = await caller(req, projectId);
      deps.identity.authorize(p, projectId, ACTION_LIST);
      const q = req.query;
      const lim = declaredInt(req, 'limit');
      let limit = lim.dflt;
      if (q['limit'] !== undefined) {
        if (!/^\d{1,6}$/.test(q['limit'])) throw new NovaError(400, 'Invalid input for query parameters limit. Value: ' + q['limit'] + '.');
        // Nova takes a larger limit as its maximum.
        limit = Math.min(lim.max, Number(q['limit']));
      }
      let status;
      if (q['status'] !== undefined && q['status'] !== '') status = q['status'].toUpperCase();
      const all = await deps.inventory.listServers({
        projectId, ...(q['name'] ? { name: q['name'] } : {}), ...(status ? { status: status as Server['status'] } : {}),
      });
      let from = 0;
      if (q['marker']) {
        from = all.findIndex((s) => s.id === q['marker']) + 1;
        if (from === 0) throw new NovaError(400, `marker [${q['marker']}] not found`);
      }
      const page = all.slice(from, from + limit);
      const base = baseUrlOf(req);
      const v = req.microversion!;
      const servers = page.map((s) => (detail ? novaServer(s, v, base) : { id: s.id, name: s.name, links: links(base, s.projectId, s.id) }));
      const out: Record<string, unknown> = { servers };
      if (from + limit < all.length && page.length > 0) {
        out['servers_links'] = [{ rel: 'next', href: `${base}/v2.1/${projectId}/servers${detail ? '/detail' : ''}?limit=${limit}&marker=${page.at(-1)!.id}` }];
      }
      return out;
    };
    nova.get<{ Params: { project_id: string }; Querystring: Record<string, string> }>('/:project_id/servers', { config: NOVA.servers }, async (req, reply) => reply.type('application/json').send(await list(req, false)));
    nova.get<{ Params: { project_id: string }; Querystring: Record<string, string> }>('/:project_id/servers/detail', { config: NOVA.serversDetail }, async (req, reply) => reply.type('application/json').send(await list(req, true)));

    nova.get<{ Params: P }>('/:project_id/servers/:server_id', { config: NOVA.server }, async (req, reply) => {
      const p = await caller(req, req.params.project_id);
      const s = await serverOf(p, req.params.project_id, req.params.server_id, ACTION_GET);
      return reply.type('application/json').send({ server: novaServer(s, req.microversion!, baseUrlOf(req)) });
    });

    /** A console URL: noVNC's page, or (serial, as Nova gives it) the WebSocket URL itself. */
    const consoleUrl = async (req: FastifyRequest, reply: FastifyReply, p: Principal, s: Server, kind: 'vnc' | 'serial', what: string): Promise<string> => {
      if (s.status !== 'ACTIVE') {
        throw new NovaError(409, `Cannot '${what}' instance ${s.id} while it is in vm_state ${NOVA_STATUS[s.status]?.[0] ?? 'error'}`);
      }
      if (kind === 'serial' && !s.console.serial) throw new NovaError(400, 'Unavailable console type serial.');
      const r = await deps.remoteConsole.getRemoteConsole(p, s.projectId, s.id, 'EN', kind, consoleRequest(req, reply));
      if (kind === 'vnc') return r.url;
      // The serial page's URL, as the WebSocket Nova's serial clients connect to.
      const u = new URL(r.url);
      const token = u.searchParams.get('token')!;
      const path = u.pathname.replace(/\/serial\.html$/, '/serial-websocket');
      return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}${path}?token=${token}`;
    };

    nova.post<{ Params: P }>('/:project_id/servers/:server_id/action', { config: NOVA.action }, async (req, reply) => {
      const p = await caller(req, req.params.project_id);
      // Checked against NOVA.action.body (route-docs.ts): one action, its argument's fields.
      const body = declaredBody(req, novaInvalid) as Record<string, unknown>;
      const action = Object.keys(body)[0]!;
      const arg = body[action];
      if (action === 'os-getVNCConsole' || action === 'os-getSerialConsole') {
        const s = await serverOf(p, req.params.project_id, req.params.server_id, ACTION_VNC);
        const type = (arg as { type: string }).type;
        const kind = action === 'os-getVNCConsole' ? 'vnc' : 'serial';
        if ((kind === 'vnc' && type !== 'novnc') || (kind === 'serial' && type !== 'serial')) {
          if (kind === 'vnc' && type === 'xvpvnc') throw new NovaError(400, 'Unavailable console type xvpvnc.');
          throw new NovaError(400, `Invalid input for field/attribute type. Value: ${type}. '${type}' is not one of ['${kind === 'vnc' ? 'novnc' : 'serial'}']`);
        }
        const url = await consoleUrl(req, reply, p, s, kind, kind === 'vnc' ? 'get_vnc_console' : 'get_serial_console');
        return reply.type('application/json').send({ console: { type, url } });
      }
      if (action === 'os-getConsoleOutput') {
        const s = await serverOf(p, req.params.project_id, req.params.server_id, ACTION_VNC);
        const raw = isObject(arg) ? arg['length'] : undefined;
        let length: number | undefined;
        if (raw !== undefined && raw !== null) {
          const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d{1,9}$/.test(raw) ? Number(raw) : NaN;
          if (!Number.isInteger(n) || n < -1) throw new NovaError(400, `Invalid input for field/attribute length. Value: ${JSON.stringify(raw)}.`);
          // -1: everything, as Nova reads it.
          if (n >= 0) length = n;
        }
        if (!deps.consoleOutput || !s.console.serial) throw new NovaError(409, `Guest does not have a console available.`);
        const o = await deps.consoleOutput.output(p, s.projectId, s.id, length === undefined ? {} : { length });
        return reply.type('application/json').send({ output: o.output });
      }
      throw new NovaError(400, `There is no such action: ${action}`);
    });

    nova.post<{ Params: P }>('/:project_id/servers/:server_id/remote-consoles', { config: NOVA.remoteConsoles }, async (req, reply) => {
      const v = req.microversion!;
      if (!atLeast(v, '2.6')) return sendNova(reply, 404, 'The resource could not be found.');
      const p = await caller(req, req.params.project_id);
      // Checked against NOVA.remoteConsoles.body (route-docs.ts): protocol one of Nova's, type a string.
      const { protocol, type } = (declaredBody(req, novaInvalid) as { remote_console: { protocol: string; type: string } }).remote_console;
      const known: Record<string, string[]> = { vnc: ['novnc', 'xvpvnc'], spice: ['spice-html5', 'spice-direct'], rdp: ['rdp-html5'], serial: ['serial'], mks: ['webmks'] };
      if (!known[protocol]!.includes(type)) throw new NovaError(400, `Invalid input for field/attribute type. Value: ${type}. '${type}' is not a valid console type for protocol ${protocol}`);
      const s = await serverOf(p, req.params.project_id, req.params.server_id, ACTION_VNC);
      if (!((protocol === 'vnc' && type === 'novnc') || (protocol === 'serial' && type === 'serial'))) {
        throw new NovaError(400, `Unavailable console type ${type}.`);
      }
      const kind = protocol === 'vnc' ? 'vnc' : 'serial';
      const url = await consoleUrl(req, reply, p, s, kind, kind === 'vnc' ? 'get_vnc_console' : 'get_serial_console');
      return reply.type('application/json').send({ remote_console: { protocol, type, url } });
    });

    nova.get<{ Params: { project_id: string; token: string } }>('/:project_id/os-console-auth-tokens/:token', { config: NOVA.consoleAuthToken }, async (req, reply) => {
      const v = req.microversion!;
      const p = await caller(req, req.params.project_id);
      deps.identity.requireDomainAdmin(p, 'os_compute_api:os-console-auth-tokens');
      // Before 2.31 Nova answers RDP tokens only; we issue none.
      if (!atLeast(v, '2.31')) throw new NovaError(400, 'The requested console type details are not accessible');
      const peek = await deps.consoleTokens.peek(req.params.token);
      const notFound = new NovaError(404, `The token '${req.params.token.slice(0, 64)}' is invalid or has expired`);
      if (peek.state !== 'valid' || !peek.record) throw notFound;
      const s = await deps.inventory.findServer(peek.record.serverId);
      if (!s || s.consoleRevision !== peek.record.consoleRevision) throw notFound;
      const { host, port } = consoleEndpoint(s, peek.record.kind ?? 'vnc');
      return reply.type('application/json').send({ console: { instance_uuid: s.id, host, port, internal_access_path: null } });
    });
  }, { prefix: '/v2.1' });
}

/** Where the console of a token is, as the proxy reaches it (Nova's host and port of a console auth token). */
function consoleEndpoint(s: Server, kind: 'vnc' | 'serial'): { host: string | null; port: number | null } {
  const c = s.console;
  if (kind === 'serial') {
    const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(c.serial ?? '');
    return m ? { host: (m[1] ?? m[2])!, port: Number(m[3]) } : { host: c.serial ?? null, port: null };
  }
  if (c.kind === 'libvirt') return { host: c.host, port: null };
  return { host: c.host, port: c.port };
}

