/**
 * Huawei IAM's identity lifecycle calls, in the shapes the official IAM SDK
 * (`@huaweicloud/huaweicloud-sdk-iam`) sends and reads: permanent access keys
 * (`/v3.0/OS-CREDENTIAL/credentials`), temporary credentials (`/v3.0/OS-CREDENTIAL/securitytokens`),
 * users (`/v3/users`, `/v3.0/OS-USER/users`), projects (`/v3/projects`, `/v3/auth/projects`) and
 * the caller's domain (`/v3/auth/domains`). Callers sign with AK/SK (GlobalCredentials) or carry
 * an IAM token; who may do what is iam-admin-service.ts's. Errors: sendIamError (admin-auth.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConsoleError } from '../errors.js';
import { actorOf, type Caller } from '../identity/iam-admin-service.js';
import type { AccessKey, Project, User } from '../identity/types.js';
import { sendIamError, type IamAuth } from './admin-auth.js';
import type { ApiDeps } from './api-server.js';
import { declaredBody } from './body.js';
import { keystoneTime } from './iam-routes.js';
import { IAM } from './route-docs.js';
import './request-context.js';

type Deps = ApiDeps & { auth: IamAuth };

function bad(message: string): ConsoleError {
  return new ConsoleError('BODY_INVALID', message);
}

/**
 * The body's `root` object (`{"credential": {...}}`), the body checked first against the schema
 * its route declares (route-docs.ts, IAM): IAM.0011 naming what is wrong.
 */
function rootObject(req: FastifyRequest, root: string): Record<string, unknown> {
  return (declaredBody(req) as Record<string, Record<string, unknown>>)[root]!;
}

/** A field the schema checked: a string, or absent (null counts as absent). */
function optString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

/** A field the schema requires (a non-empty string). */
function reqString(o: Record<string, unknown>, key: string): string {
  return o[key] as string;
}

function optBool(o: Record<string, unknown>, key: string): boolean | undefined {
  const v = o[key];
  return typeof v === 'boolean' ? v : undefined;
}

function queryString(req: FastifyRequest, key: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[key];
  return typeof v === 'string' ? v : undefined;
}

function baseUrl(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? req.hostname}`;
}

function permanentKeyBody(k: AccessKey): Record<string, unknown> {
  return { user_id: k.userId, access: k.ak, status: k.status ?? 'active', create_time: keystoneTime(k.createdAt), description: k.description ?? '' };
}

function userBody(req: FastifyRequest, u: User): Record<string, unknown> {
  return {
    id: u.id, name: u.name, domain_id: u.domainId, enabled: u.enabled !== false, description: u.description ?? '',
    // No password expiry policy here: nothing expires, no reset is pending.
    pwd_status: false, password_expires_at: null, access_mode: 'programmatic',
    links: { self: `${baseUrl(req)}/v3/users/${u.id}` },
  };
}

function projectBody(req: FastifyRequest, p: Project): Record<string, unknown> {
  return {
    id: p.id, name: p.name, domain_id: p.domainId, parent_id: p.domainId, is_domain: false, enabled: true, description: p.description ?? '',
    links: { self: `${baseUrl(req)}/v3/projects/${p.id}` },
  };
}

function listLinks(req: FastifyRequest): Record<string, unknown> {
  return { self: `${baseUrl(req)}${req.url.split('?')[0]}`, previous: null, next: null };
}

export function registerIamLifecycleRoutes(app: FastifyInstance, deps: Deps): void {
  const { iam } = deps;

  /** Authenticates, runs `fn` with the caller, answers Huawei IAM's errors. */
  const route = (fn: (c: Caller, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      try {
        const p = await deps.auth.authenticate(req);
        return await fn({ principal: p, actor: actorOf(p), requestId: req.id, clientAddress: req.ip }, req, reply);
      } catch (e) {
        return sendIamError(reply, e);
      }
    };
  const json = (reply: FastifyReply, status: number, body: unknown): FastifyReply => reply.code(status).type('application/json').send(body);
  const param = (req: FastifyRequest, name: string): string => (req.params as Record<string, string>)[name] ?? '';

  // ---- permanent access keys

  app.post('/v3.0/OS-CREDENTIAL/credentials', { config: IAM.createKey }, route(async (c, req, reply) => {
    const o = rootObject(req, 'credential');
    const description = optString(o, 'description');
    const r = await iam.createAccessKey(c, { userId: reqString(o, 'user_id'), ...(description !== undefined ? { description } : {}) });
    return json(reply, 201, { credential: { ...permanentKeyBody(r.key), secret: r.sk } });
  }));
  app.get('/v3.0/OS-CREDENTIAL/credentials', { config: IAM.listKeys }, route(async (c, req, reply) => {
    const keys = await iam.listAccessKeys(c, queryString(req, 'user_id'));
    return json(reply, 200, { credentials: keys.map(permanentKeyBody) });
  }));
  app.get('/v3.0/OS-CREDENTIAL/credentials/:access_key', { config: IAM.showKey }, route(async (c, req, reply) => {
    const k = await iam.showAccessKey(c, param(req, 'access_key'));
    // Last use is not recorded: an honest "never known".
    return json(reply, 200, { credential: { ...permanentKeyBody(k), last_use_time: null } });
  }));
  app.put('/v3.0/OS-CREDENTIAL/credentials/:access_key', { config: IAM.updateKey }, route(async (c, req, reply) => {
    const o = rootObject(req, 'credential');
    const status = optString(o, 'status');
    const description = optString(o, 'description');
    if (status === undefined && description === undefined) throw bad('credential needs status or description.');
    const k = await iam.updateAccessKey(c, param(req, 'access_key'), { ...(status ? { status: status as 'active' | 'inactive' } : {}), ...(description !== undefined ? { description } : {}) });
    return json(reply, 200, { credential: permanentKeyBody(k) });
  }));
  app.delete('/v3.0/OS-CREDENTIAL/credentials/:access_key', { config: IAM.deleteKey }, route(async (c, req, reply) => {
    await iam.deleteAccessKey(c, param(req, 'access_key'));
    return reply.code(204).send();
  }));

  // ---- temporary credentials

  app.post('/v3.0/OS-CREDENTIAL/securitytokens', { config: IAM.securityToken }, route(async (c, req, reply) => {
    // Checked against IAM.securityToken.body (route-docs.ts): methods ["token"], token {id, duration_seconds}.
    const identity = rootObject(req, 'auth')['identity'] as { token?: { id?: string | null; duration_seconds?: number | null } | null };
    const t = identity.token ?? {};
    const d = t.duration_seconds ?? 900;
    // The token named in the body, or the caller's own (X-Auth-Token).
    const named = t.id ?? undefined;
    const own = req.headers['x-auth-token'];
    const token = named ?? (typeof own === 'string' ? own : undefined);
    if (token === undefined) throw bad('auth.identity.token.id is required when the call is signed with an access key.');
    const r = await iam.createTemporaryCredential(c, token, d);
    return json(reply, 201, { credential: { access: r.ak, secret: r.sk, securitytoken: r.securityToken, expires_at: new Date(r.expiresAt).toISOString() } });
  }));

  // ---- users

  app.post('/v3/users', { config: IAM.createUser }, route(async (c, req, reply) => {
    const o = rootObject(req, 'user');
    const domainId = optString(o, 'domain_id');
    const password = optString(o, 'password');
    const enabled = optBool(o, 'enabled');
    const description = optString(o, 'description');
    const u = await iam.createUser(c, {
      name: reqString(o, 'name'), ...(domainId !== undefined ? { domainId } : {}), ...(password !== undefined ? { password } : {}),
      ...(enabled !== undefined ? { enabled } : {}), ...(description !== undefined ? { description } : {}),
    });
    return json(reply, 201, { user: userBody(req, u) });
  }));
  app.get('/v3/users', { config: IAM.listUsers }, route(async (c, req, reply) => {
    const enabled = queryString(req, 'enabled');
    const name = queryString(req, 'name');
    const users = (await iam.listUsers(c, queryString(req, 'domain_id'))).filter((u) =>
      (enabled === undefined || String(u.enabled !== false) === enabled) && (name === undefined || u.name === name));
    return json(reply, 200, { users: users.map((u) => ({ ...userBody(req, u), last_project_id: null })), links: listLinks(req) });
  }));
  app.get('/v3/users/:user_id', { config: IAM.showUser }, route(async (c, req, reply) => {
    return json(reply, 200, { user: { ...userBody(req, await iam.showUser(c, param(req, 'user_id'))), last_project_id: null } });
  }));
  app.put('/v3.0/OS-USER/users/:user_id', { config: IAM.updateUser }, route(async (c, req, reply) => {
    const o = rootObject(req, 'user');
    const enabled = optBool(o, 'enabled');
    const description = optString(o, 'description');
    const name = optString(o, 'name');
    const password = optString(o, 'password');
    if (enabled === undefined && description === undefined && name === undefined && password === undefined) throw bad('user needs enabled, description, name or password.');
    const u = await iam.updateUser(c, param(req, 'user_id'), {
      ...(enabled !== undefined ? { enabled } : {}), ...(description !== undefined ? { description } : {}),
      ...(name !== undefined ? { name } : {}), ...(password !== undefined ? { password } : {}),
    });
    return json(reply, 200, {
      user: { ...userBody(req, u), create_time: keystoneTime(u.createdAt), is_domain_owner: false, xdomain_id: null, xdomain_type: null, xuser_id: null, xuser_type: null, email: null, phone: null, areacode: null },
    });
  }));
  app.post('/v3/users/:user_id/password', { config: IAM.changePassword }, route(async (c, req, reply) => {
    const o = rootObject(req, 'user');
    await iam.changePassword(c, param(req, 'user_id'), reqString(o, 'original_password'), reqString(o, 'password'));
    return reply.code(204).send();
  }));
  app.delete('/v3/users/:user_id', { config: IAM.deleteUser }, route(async (c, req, reply) => {
    await iam.deleteUser(c, param(req, 'user_id'));
    return reply.code(204).send();
  }));

  // ---- projects

  app.post('/v3/projects', { config: IAM.createProject }, route(async (c, req, reply) => {
    const o = rootObject(req, 'project');
    const domainId = optString(o, 'domain_id');
    const description = optString(o, 'description');
    const p = await iam.createProject(c, {
      name: reqString(o, 'name'), ...(domainId !== undefined ? { domainId } : {}), ...(description !== undefined ? { description } : {}),
    });
    return json(reply, 201, { project: projectBody(req, p) });
  }));
  app.get('/v3/projects', { config: IAM.listProjects }, route(async (c, req, reply) => {
    const domainId = queryString(req, 'domain_id');
    const name = queryString(req, 'name');
    const projects = await iam.listProjects(c, { ...(domainId !== undefined ? { domainId } : {}), ...(name !== undefined ? { name } : {}) });
    return json(reply, 200, { projects: projects.map((p) => projectBody(req, p)), links: listLinks(req) });
  }));
  app.get('/v3/projects/:project_id', { config: IAM.showProject }, route(async (c, req, reply) => {
    return json(reply, 200, { project: projectBody(req, await iam.showProject(c, param(req, 'project_id'))) });
  }));
  app.patch('/v3/projects/:project_id', { config: IAM.updateProject }, route(async (c, req, reply) => {
    const o = rootObject(req, 'project');
    const name = optString(o, 'name');
    const description = optString(o, 'description');
    if (name === undefined && description === undefined) throw bad('project needs name or description.');
    const p = await iam.updateProject(c, param(req, 'project_id'), { ...(name !== undefined ? { name } : {}), ...(description !== undefined ? { description } : {}) });
    return json(reply, 200, { project: projectBody(req, p) });
  }));
  app.get('/v3/auth/projects', { config: IAM.authProjects }, route(async (c, req, reply) => {
    const projects = await iam.listProjects(c);
    return json(reply, 200, { projects: projects.map((p) => projectBody(req, p)), links: { self: `${baseUrl(req)}/v3/auth/projects` } });
  }));
  app.get('/v3/auth/domains', { config: IAM.authDomains }, route(async (c, req, reply) => {
    const d = await deps.identity.domainOf(c.principal!);
    return json(reply, 200, { domains: [{ id: d.id, name: d.name, enabled: true, description: '', links: { self: `${baseUrl(req)}/v3/domains/${d.id}` } }], links: { self: `${baseUrl(req)}/v3/auth/domains` } });
  }));
}
