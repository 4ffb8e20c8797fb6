/** Huawei ECS routes: remote_console (POST), ShowServer and ListServersDetails (GET). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConsoleError, ProjectMismatchError, ServerNotFoundError } from '../errors.js';
import { ACTION_GET, ACTION_LIST, ACTION_START, ACTION_STOP } from '../identity/types.js';
import { tokenRef } from '../log.js';
import { uuid } from '../util/ids.js';
import { parseStatus } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import type { ConsoleLang, RequestAudit } from '../tokens/remote-console-service.js';
import { declaredBody, invalidBody } from './body.js';
import { declaredInt } from './query.js';
import type { ApiDeps } from './api-server.js';
import { accessLineAudit } from './request-context.js';
import { ECS } from './route-docs.js';

interface EcsDeps extends ApiDeps {
  authenticate(req: FastifyRequest): Promise<void>;
}

type Params = { project_id: string; server_id: string };

/** Huawei timestamps: `2026-01-01T00:00:00Z` (no milliseconds). */
export function huaweiTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const VM_STATE: Record<string, string> = {
  ACTIVE: 'active', BUILD: 'building', SHUTOFF: 'stopped', REBOOT: 'active', HARD_REBOOT: 'active', REBUILD: 'rebuilding',
  MIGRATING: 'active', RESIZE: 'resized', VERIFY_RESIZE: 'resized', REVERT_RESIZE: 'resized', ERROR: 'error',
  DELETED: 'deleted', SHELVED: 'shelved', SHELVED_OFFLOADED: 'shelved_offloaded', UNKNOWN: 'error',
};

/** A server in Huawei's ServerDetail shape (the fields we have; the SDK tolerates absent ones). */
export function serverDetail(s: Server): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    status: s.status,
    tenant_id: s.projectId,
    created: huaweiTime(s.createdAt),
    updated: huaweiTime(s.updatedAt),
    'OS-EXT-AZ:availability_zone': s.availabilityZone,
    'OS-EXT-STS:vm_state': VM_STATE[s.status] ?? 'error',
    'OS-EXT-STS:power_state': s.status === 'ACTIVE' ? 1 : 4,
    'OS-EXT-STS:task_state': '',
    addresses: {},
    metadata: {},
    tags: [],
    locked: false,
    description: '',
  };
}

/** `X-Language: zh-cn` selects the Chinese console page; English otherwise. */
export function consoleLang(header: string | string[] | undefined): ConsoleLang {
  const v = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase();
  return v === 'zh-cn' || v === 'zh_cn' || v === 'zh' ? 'ZH' : 'EN';
}

function checkProjectHeader(req: FastifyRequest, projectId: string): void {
  const h = req.headers['x-project-id'];
  if (typeof h === 'string' && h !== projectId) throw new ProjectMismatchError();
}

function intParam(raw: unknown, name: string, min: number, max: number, dflt: number): number {
  if (raw === undefined || raw === '') return dflt;
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) throw new ConsoleError('VALIDATION', `Invalid parameter: ${name} must be an integer.`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConsoleError('VALIDATION', `Invalid parameter: ${name} must be between ${min} and ${max}.`);
  return n;
}

const INVALID = invalidBody('Invalid request body: ');

/**
 * What a console URL's audit record keeps of the API request asking for it (its id, the client's
 * address, the IAM token's reference); the record's log fields go on the request's access line.
 */
export function consoleRequest(req: FastifyRequest, reply: FastifyReply): RequestAudit {
  const iamToken = req.headers['x-auth-token'];
  return { requestId: req.id, clientAddress: req.ip, ...(typeof iamToken === 'string' ? { iamTokenRef: tokenRef(iamToken) } : {}), logTo: accessLineAudit(req, reply) };
}

export function registerEcsRoutes(app: FastifyInstance, deps: EcsDeps): void {
  app.post<{ Params: Params }>('/v1/:project_id/cloudservers/:server_id/remote_console', { config: ECS.remoteConsole }, async (req, reply) => {
    const { project_id: projectId, server_id: serverId } = req.params;
    await deps.authenticate(req);
    checkProjectHeader(req, projectId);
    deps.identity.authorize(req.principal!, projectId, 'ecs:cloudServers:vnc');
    // Checked against ECS.remoteConsole.body (route-docs.ts); the pairs below.
    const { type, protocol } = (declaredBody(req, INVALID) as { remote_console: { type: string; protocol: string } }).remote_console;
    const request = consoleRequest(req, reply);
    // Our documented extension: {"protocol":"serial","type":"serial"} gives the serial console's URL.
    if (type === 'serial' && protocol === 'serial') {
      const r = await deps.remoteConsole.getRemoteConsole(req.principal!, projectId, serverId, consoleLang(req.headers['x-language']), 'serial', request);
      return reply.type('application/json').send({ remote_console: { type: 'serial', protocol: 'serial', url: r.url } });
    }
    if (type !== 'novnc') throw new ConsoleError('BODY_INVALID', 'Invalid request body: remote_console.type must be novnc.');
    if (protocol !== 'vnc') throw new ConsoleError('BODY_INVALID', 'Invalid request body: remote_console.protocol must be vnc.');
    const r = await deps.remoteConsole.getRemoteConsole(req.principal!, projectId, serverId, consoleLang(req.headers['x-language']), 'vnc', request);
    return reply.type('application/json').send({ remote_console: { type: 'novnc', protocol: 'vnc', url: r.url } });
  });

  // BatchStartServers / BatchStopServers: the inventory's status is the state of record here (the
  // hypervisor is driven elsewhere); stopping revokes tokens and closes live consoles.
  app.post<{ Params: { project_id: string } }>('/v1/:project_id/cloudservers/action', { config: ECS.action }, async (req, reply) => {
    const projectId = req.params.project_id;
    await deps.authenticate(req);
    checkProjectHeader(req, projectId);
    // Checked against ECS.action.body (route-docs.ts): exactly one of os-start, os-stop.
    const body = declaredBody(req, INVALID) as Record<string, { servers: Array<{ id: string }> }>;
    const action = Object.keys(body)[0] as 'os-start' | 'os-stop';
    deps.identity.authorize(req.principal!, projectId, action === 'os-stop' ? ACTION_STOP : ACTION_START);
    const ids = body[action]!.servers.map((x) => x.id);
    // All or nothing: every server must be the project's before any changes.
    const servers = await Promise.all(ids.map(async (id) => {
      const s = await deps.inventory.findServer(id);
      if (!s || s.projectId !== projectId) throw new ServerNotFoundError(id);
      return s;
    }));
    for (const s of servers) {
      const target = action === 'os-stop' ? 'SHUTOFF' : 'ACTIVE';
      if (s.status !== target) {
        await deps.inventory.setStatus(s.id, target, {
          actor: { userId: req.principal!.userId, credential: req.principal!.credentialId }, door: 'api', requestId: req.id, clientAddress: req.ip,
        });
      }
    }
    return reply.type('application/json').send({ job_id: uuid() });
  });

  // Registered before :server_id so that "detail" is not taken for a server id.
  app.get<{ Params: { project_id: string }; Querystring: Record<string, string> }>('/v1/:project_id/cloudservers/detail', { config: ECS.list }, async (req, reply) => {
    const projectId = req.params.project_id;
    await deps.authenticate(req);
    checkProjectHeader(req, projectId);
    deps.identity.authorize(req.principal!, projectId, ACTION_LIST);
    const q = req.query;
    const lim = declaredInt(req, 'limit');
    const off = declaredInt(req, 'offset');
    const limit = intParam(q['limit'], 'limit', lim.min, lim.max, lim.dflt);
    // Huawei: offset is a page number; 0 and 1 both mean the first page.
    const page = Math.max(1, intParam(q['offset'], 'offset', off.min, off.max, off.dflt));
    const name = typeof q['name'] === 'string' && q['name'] !== '' ? q['name'] : undefined;
    let status;
    try {
      status = typeof q['status'] === 'string' && q['status'] !== '' ? parseStatus(q['status']) : undefined;
    } catch {
      throw new ConsoleError('VALIDATION', 'Invalid parameter: status is not a server status.');
    }
    const filter = { projectId, ...(name !== undefined ? { name } : {}), ...(status !== undefined ? { status } : {}) };
    const [servers, count] = await Promise.all([
      deps.inventory.listServers({ ...filter, limit, offset: (page - 1) * limit }),
      deps.inventory.countServers(filter),
    ]);
    return reply.type('application/json').send({ count, servers: servers.map(serverDetail) });
  });

  app.get<{ Params: Params }>('/v1/:project_id/cloudservers/:server_id', { config: ECS.show }, async (req, reply) => {
    const { project_id: projectId, server_id: serverId } = req.params;
    await deps.authenticate(req);
    checkProjectHeader(req, projectId);
    deps.identity.authorize(req.principal!, projectId, ACTION_GET);
    const s = await deps.inventory.findServer(serverId);
    if (!s || s.projectId !== projectId) throw new ServerNotFoundError(serverId);
    return reply.type('application/json').send({ server: serverDetail(s) });
  });
}
