/**
 * The admin API (`/admin/v1`): console targets of servers (create, read, list, partial update,
 * delete), bulk sync of a project's or zone's servers, live sessions (list, end with a reason),
 * audit search and export. Domain administrators only (Huawei's `admin` group), authenticated as
 * the IAM API is (IAM token or AK/SK signature); each one acts on its domain's projects only.
 * Errors answer as Huawei IAM does (Keystone bodies for 401/403/404/409, IAM.0011 for a bad body).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { auditJson, exportText, type AuditQueryInput } from '../audit/audit-service.js';
import { consoleBody, serverItem, syncBody } from '../cli/admin-commands.js';
import { ConsoleError, NotFoundError, ValidationError } from '../errors.js';
import type { Principal } from '../identity/types.js';
import { parseStatus, type OperatorContext, type ServerSyncResult, type ServerUpdate } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import type { LiveSession, SessionService } from '../sessions/session-service.js';
import type { AuditService } from '../audit/audit-service.js';
import { sendIamError, type IamAuth } from './admin-auth.js';
import * as S from './admin-schemas.js';
import type { ApiDeps } from './api-server.js';
import { parseJsonBody } from './body.js';
import { huaweiTime } from './ecs-routes.js';
import type { RouteDoc } from './openapi.js';
import { registerAdminRecordingRoutes } from './admin-recording-routes.js';
import type { Auditor } from '../audit/auditor.js';

export const ADMIN_PREFIX = '/admin/v1';

/** The operator services the admin API calls (the CLI calls the same). */
export interface AdminDeps extends ApiDeps {
  readonly auth: IamAuth;
  readonly sessions: SessionService;
  readonly audit: AuditService;
  /** Records the recording-policy changes (the inventory's changes are recorded by the inventory). */
  readonly auditor?: Auditor;
}

const ACTION = {
  read: 'ecs-console:admin:get',
  write: 'ecs-console:admin:update',
} as const;

/** A server as the admin API shows it (the VNC password never). */
export function adminServer(s: Server): Record<string, unknown> {
  const c = s.console;
  return {
    id: s.id, name: s.name, status: s.status, project_id: s.projectId, availability_zone: s.availabilityZone,
    created: huaweiTime(s.createdAt), updated: huaweiTime(s.updatedAt), console_revision: s.consoleRevision,
    console: {
      kind: c.kind, host: c.host, port: c.kind === 'libvirt' ? null : c.port, auth: c.auth, password_set: c.passwordSealed !== null,
      qmp: c.kind === 'qemu-qmp' ? c.qmp : null, uri: c.kind === 'libvirt' ? c.uri : null, domain: c.kind === 'libvirt' ? c.domain : null,
      tls: c.tls !== null, tls_name: c.tls?.serverName ?? null, serial: c.serial ?? null,
    },
  };
}

function sessionJson(s: LiveSession): Record<string, unknown> {
  return {
    id: s.id, server_id: s.serverId, server_name: s.serverName, project_id: s.projectId, user_id: s.userId, credential: s.credential,
    client_address: s.clientAddress, node_id: s.nodeId, started_at: new Date(s.startedAt).toISOString(),
    bytes_to_client: s.bytesToClient, bytes_to_backend: s.bytesToBackend,
  };
}

function syncJson(r: ServerSyncResult): Record<string, unknown> {
  return {
    sync: {
      dry_run: r.dryRun, project_id: r.scope.projectId, availability_zone: r.scope.availabilityZone ?? null,
      created: r.created, updated: r.updated, deleted: r.deleted, revoked: r.revoked, unchanged: r.unchanged,
    },
  };
}

const json = (description: string, schema?: object) => ({ description, ...(schema ? { schema } : {}) });
const ERR = json('Invalid request (IAM.0011 with what is wrong).');
const NOT_FOUND = json('Not found (Keystone body).');

function doc(summary: string, responses: RouteDoc['responses'], extra: Partial<RouteDoc> = {}): { openapi: RouteDoc } {
  return { openapi: { summary, tags: ['admin'], auth: 'admin', responses: { '400': ERR, ...responses }, ...extra } };
}

type Query = Record<string, unknown>;

export function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { inventory, identity } = deps;

  /** The domain administrator calling, and the audit context of what it does. */
  const admin = async (req: FastifyRequest, action: string): Promise<{ p: Principal; ctx: OperatorContext }> => {
    const p = await deps.auth.requireDomainAdmin(req, action);
    // Path and query were checked by the route's schemas (attachValidation): reported after
    // authentication, so that an unauthenticated caller learns nothing from them.
    if (req.validationError) throw new ValidationError(`${req.validationError.message}`, 'request');
    return { p, ctx: { actor: { userId: p.userId, credential: p.credentialId }, door: 'api', requestId: req.id, clientAddress: req.ip } };
  };

  /** The project, when it is the caller's domain's (another domain's is "not found", never "forbidden"). */
  const ownProject = async (p: Principal, projectId: string): Promise<void> => {
    const project = await identity.getProject(projectId).catch(() => null);
    if (!project || project.domainId !== p.domainId) throw new NotFoundError('project', projectId);
  };
  const domainProjects = async (p: Principal): Promise<string[]> => (await identity.listProjects()).filter((x) => x.domainId === p.domainId).map((x) => x.id);
  const ownServer = async (p: Principal, id: string): Promise<Server> => {
    const s = await inventory.findServer(id);
    if (!s || !(await domainProjects(p)).includes(s.projectId)) throw new NotFoundError('server', id);
    return s;
  };

  /** A body checked against its schema (after authentication), then by the services. */
  const body = (req: FastifyRequest, schema: object): Record<string, unknown> => {
    const b = parseJsonBody(req.rawBody ?? Buffer.alloc(0), req.headers['content-type']);
    const check = req.compileValidationSchema(schema);
    if (!check(b)) {
      const e = check.errors?.[0];
      const where = (e?.instancePath ?? '').replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
      throw new ConsoleError('BODY_INVALID', `${where || 'body'} ${e?.message ?? 'is not valid'}`);
    }
    return b as Record<string, unknown>;
  };

  const answer = async (reply: FastifyReply, run: () => Promise<FastifyReply>): Promise<FastifyReply> => {
    try {
      return await run();
    } catch (e) {
      return sendIamError(reply, e);
    }
  };

  const common = { attachValidation: true } as const;

  app.post(`${ADMIN_PREFIX}/servers`, {
    ...common, config: doc('Create a server\'s console target', { '201': json('Created.', { type: 'object', properties: { server: S.serverOutputSchema } }), '409': json('The id exists.') }, { body: S.createServerBody }),
  }, (req, reply) => answer(reply, async () => {
    const { p, ctx } = await admin(req, ACTION.write);
    const s = body(req, S.createServerBody)['server'] as Record<string, unknown>;
    await ownProject(p, s['project_id'] as string);
    const item = serverItem({ ...s, id: s['id'] }, 'server');
    const srv = await inventory.addServer({
      projectId: s['project_id'] as string, name: item.name, console: item.console,
      ...(item.id !== undefined ? { id: item.id } : {}), ...(item.status !== undefined ? { status: parseStatus(item.status) } : {}),
      ...(item.availabilityZone !== undefined ? { availabilityZone: item.availabilityZone } : {}),
    }, ctx);
    return reply.code(201).type('application/json').send({ server: adminServer(srv) });
  }));

  app.get(`${ADMIN_PREFIX}/servers`, {
    ...common, schema: { querystring: S.listServersQuery },
    config: doc('List servers (filters; marker pagination as Huawei lists)', { '200': json('A page; `next_marker` is set when there may be more.', { type: 'object', properties: { servers: { type: 'array', items: S.serverOutputSchema }, count: { type: 'integer' }, next_marker: { type: ['string', 'null'] } } }) }),
  }, (req, reply) => answer(reply, async () => {
    const { p } = await admin(req, ACTION.read);
    const q = req.query as Query;
    const projects = await domainProjects(p);
    const projectId = q['project_id'] as string | undefined;
    if (projectId !== undefined && !projects.includes(projectId)) throw new NotFoundError('project', projectId);
    const limit = q['limit'] as number;
    const filter = {
      ...(projectId !== undefined ? { projectId } : { projectIds: projects }),
      ...(q['status'] !== undefined ? { status: q['status'] as Server['status'] } : {}),
      ...(q['name'] !== undefined ? { name: q['name'] as string } : {}),
      ...(q['availability_zone'] !== undefined ? { availabilityZone: q['availability_zone'] as string } : {}),
    };
    const marker = q['marker'] as string | undefined;
    if (marker !== undefined) await ownServer(p, marker);
    const [servers, count] = await Promise.all([
      inventory.listServers({ ...filter, limit, ...(marker !== undefined ? { afterId: marker } : {}) }),
      inventory.countServers(filter),
    ]);
    return reply.type('application/json').send({ servers: servers.map(adminServer), count, next_marker: servers.length === limit ? servers[servers.length - 1]!.id : null });
  }));

  app.get(`${ADMIN_PREFIX}/servers/:server_id`, {
    ...common, schema: { params: S.serverParams },
    config: doc('Show a server and its console target (never its password)', { '200': json('The server.', { type: 'object', properties: { server: S.serverOutputSchema } }), '404': NOT_FOUND }),
  }, (req, reply) => answer(reply, async () => {
    const { p } = await admin(req, ACTION.read);
    return reply.type('application/json').send({ server: adminServer(await ownServer(p, (req.params as Query)['server_id'] as string)) });
  }));

  app.patch(`${ADMIN_PREFIX}/servers/:server_id`, {
    ...common, schema: { params: S.serverParams }, bodyLimit: deps.config.adminBodyLimitBytes,
    config: doc('Change only what is given (the VNC password alone, the host alone, the status alone...)', { '200': json('The server after the change.', { type: 'object', properties: { server: S.serverOutputSchema } }), '404': NOT_FOUND }, { body: S.updateServerBody }),
  }, (req, reply) => answer(reply, async () => {
    const { p, ctx } = await admin(req, ACTION.write);
    const id = (req.params as Query)['server_id'] as string;
    const s = body(req, S.updateServerBody)['server'] as Record<string, unknown>;
    await ownServer(p, id);
    const u: ServerUpdate = {
      ...(s['name'] !== undefined ? { name: s['name'] as string } : {}), ...(s['status'] !== undefined ? { status: s['status'] as string } : {}),
      ...(s['availability_zone'] !== undefined ? { availabilityZone: s['availability_zone'] as string } : {}),
      ...(s['console'] !== undefined ? { console: consoleBody(s['console'] as Record<string, unknown>) } : {}),
    };
    return reply.type('application/json').send({ server: adminServer(await inventory.updateServer(id, u, ctx)) });
  }));

  app.delete(`${ADMIN_PREFIX}/servers/:server_id`, {
    ...common, schema: { params: S.serverParams },
    config: doc('Delete a server: its console URLs are revoked and its live sessions closed', { '204': json('Deleted.'), '404': NOT_FOUND }),
  }, (req, reply) => answer(reply, async () => {
    const { p, ctx } = await admin(req, ACTION.write);
    const id = (req.params as Query)['server_id'] as string;
    await ownServer(p, id);
    await inventory.removeServer(id, ctx);
    return reply.code(204).send();
  }));

  const sync = async (req: FastifyRequest, reply: FastifyReply, availabilityZone: string | undefined): Promise<FastifyReply> => {
    const { p, ctx } = await admin(req, ACTION.write);
    const params = req.params as Query;
    const projectId = params['project_id'] as string;
    await ownProject(p, projectId);
    const b = body(req, S.syncBodySchema);
    const parsed = syncBody({ ...b, project_id: projectId });
    const dryRun = (req.query as Query)['dry_run'] === true;
    const r = await inventory.syncServers({ projectId, ...(availabilityZone !== undefined ? { availabilityZone } : {}) }, parsed.servers, { dryRun }, ctx);
    return reply.type('application/json').send(syncJson(r));
  };
  const syncDoc = (scope: string) => doc(`Bulk sync: PUT the complete list of ${scope} servers; the difference is applied in one transaction (create, update, delete, revoke); idempotent; dry_run answers the plan`,
    { '200': json('What changed (or, with dry_run, would change).', S.syncResultSchema), '404': NOT_FOUND, '409': json('A server id exists outside the scope: nothing was changed.') }, { body: S.syncBodySchema });
  app.put(`${ADMIN_PREFIX}/projects/:project_id/servers`, {
    ...common, schema: { params: S.projectParams, querystring: S.syncQuery }, bodyLimit: deps.config.adminBodyLimitBytes, config: syncDoc('a project\'s'),
  }, (req, reply) => answer(reply, () => sync(req, reply, undefined)));
  app.put(`${ADMIN_PREFIX}/projects/:project_id/availability-zones/:availability_zone/servers`, {
    ...common, schema: { params: S.projectAzParams, querystring: S.syncQuery }, bodyLimit: deps.config.adminBodyLimitBytes, config: syncDoc('one availability zone\'s (of a project)'),
  }, (req, reply) => answer(reply, () => sync(req, reply, (req.params as Query)['availability_zone'] as string)));

  app.get(`${ADMIN_PREFIX}/sessions`, {
    ...common, schema: { querystring: S.listSessionsQuery },
    config: doc('Live console sessions of every proxy node (server, user, credential, client address, node, start, bytes each way)', { '200': json('The sessions.', S.sessionsSchema) }),
  }, (req, reply) => answer(reply, async () => {
    const { p } = await admin(req, ACTION.read);
    const q = req.query as Query;
    const projects = new Set(await domainProjects(p));
    const list = await deps.sessions.list({
      ...(q['server_id'] !== undefined ? { serverId: q['server_id'] as string } : {}), ...(q['project_id'] !== undefined ? { projectId: q['project_id'] as string } : {}),
    });
    return reply.type('application/json').send({ sessions: list.filter((s) => projects.has(s.projectId)).map(sessionJson) });
  }));

  app.delete(`${ADMIN_PREFIX}/sessions/:session_id`, {
    ...common, schema: { params: S.sessionParams, querystring: S.killQuery },
    config: doc('End one live session; `reason` is shown on the user\'s page', { '202': json('Asked its proxy node to close it.', S.killResultSchema), '404': NOT_FOUND }),
  }, (req, reply) => answer(reply, async () => {
    const { p, ctx } = await admin(req, ACTION.write);
    const id = (req.params as Query)['session_id'] as string;
    const row = (await deps.sessions.list()).find((x) => x.id === id);
    if (!row || !(await domainProjects(p)).includes(row.projectId)) throw new NotFoundError('session', id);
    const r = await deps.sessions.kill({ sessionId: id }, (req.query as Query)['reason'], ctx);
    return reply.code(202).type('application/json').send({ server_id: r.serverId, session_id: r.sessionId, listed: r.listed });
  }));

  app.delete(`${ADMIN_PREFIX}/servers/:server_id/sessions`, {
    ...common, schema: { params: S.serverParams, querystring: S.killQuery },
    config: doc('End every live session of a server; `reason` is shown on the users\' pages', { '202': json('Asked every proxy node to close them.', S.killResultSchema), '404': NOT_FOUND }),
  }, (req, reply) => answer(reply, async () => {
    const { p, ctx } = await admin(req, ACTION.write);
    const id = (req.params as Query)['server_id'] as string;
    await ownServer(p, id);
    const r = await deps.sessions.kill({ serverId: id }, (req.query as Query)['reason'], ctx);
    return reply.code(202).type('application/json').send({ server_id: r.serverId, session_id: r.sessionId, listed: r.listed });
  }));

  const auditInput = async (p: Principal, q: Query): Promise<AuditQueryInput & { projectIds?: string[] }> => {
    const str = (k: string): string | undefined => (q[k] === undefined ? undefined : String(q[k]));
    const projects = await domainProjects(p);
    const project = str('project_id');
    if (project !== undefined && !projects.includes(project)) throw new NotFoundError('project', project);
    // No project asked: every project of the domain, and the domain's own records (users, keys).
    const out: AuditQueryInput & { projectIds?: string[] } = project === undefined ? { projectIds: projects, domainId: p.domainId } : { project };
    const map: Array<[keyof AuditQueryInput, string]> = [
      ['server', 'server_id'], ['user', 'user_id'], ['accessKey', 'access_key'], ['clientAddress', 'client_address'], ['kind', 'kind'],
      ['outcome', 'outcome'], ['from', 'from'], ['to', 'to'], ['marker', 'marker'], ['limit', 'limit'],
    ];
    for (const [k, name] of map) if (str(name) !== undefined) (out as Record<string, string>)[k] = str(name)!;
    return out;
  };

  app.get(`${ADMIN_PREFIX}/audit`, {
    ...common, schema: { querystring: S.auditQuery },
    config: doc('Search the audit trail (your domain\'s projects), newest first, paged by marker', { '200': json('A page of records.', S.auditPageSchema) }),
  }, (req, reply) => answer(reply, async () => {
    const { p } = await admin(req, ACTION.read);
    const page = await deps.audit.search(await auditInput(p, req.query as Query));
    return reply.type('application/json').send({ events: page.events.map(auditJson), next_marker: page.nextMarker });
  }));

  app.get(`${ADMIN_PREFIX}/audit/export`, {
    ...common, schema: { querystring: S.auditExportQuery },
    config: doc('Export every matching audit record, newest first, streamed (no cap): CSV (header row, RFC 4180 quoting, formulas neutralised) or JSON lines', {
      '200': { description: 'The records.', contentType: 'text/csv', schema: { type: 'string' } },
    }),
  }, (req, reply) => answer(reply, async () => {
    const { p } = await admin(req, ACTION.read);
    const q = req.query as Query;
    const input = await auditInput(p, q);
    const csv = (q['format'] ?? 'csv') === 'csv';
    const text = exportText(deps.audit.export(input), csv ? 'csv' : 'json');
    // The first piece is read before the answer starts, so that a store failure is still an error
    // answer; the rest streams as it is read (no cap, nothing held whole). A failure later aborts
    // the transfer (the client sees an incomplete body, never a short file that looks whole).
    const first = await text.next();
    const body = Readable.from((async function* () {
      if (!first.done) yield first.value;
      yield* text;
    })());
    return reply
      .type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
      .header('Content-Disposition', `attachment; filename="audit.${csv ? 'csv' : 'jsonl'}"`)
      .send(body);
  }));

  if (deps.recordings) {
    registerAdminRecordingRoutes(app, {
      prefix: ADMIN_PREFIX, recordings: deps.recordings, ...(deps.auditor ? { auditor: deps.auditor } : {}),
      admin, ownProject, domainProjects, ownServer, body, answer, doc, actions: ACTION,
    });
  }
}
