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
import { isObject, parseJsonBody } from './body.js';
import { keystoneTime } from './iam-routes.js';
import { IAM } from './route-docs.js';
import './request-context.js';

type Deps = ApiDeps & { auth: IamAuth };

function bad(message: string): ConsoleError {
  return new ConsoleError('BODY_INVALID', message);
}

/** The body's `root` object (`{"credential": {...}}`); IAM.0011 when absent or not an object. */
function rootObject(req: FastifyRequest, root: string): Record<string, unknown> {
  const b = parseJsonBody(req.rawBody ?? Buffer.alloc(0), req.headers['content-type']);
  const o = isObject(b) ? b[root] : undefined;
  if (!isObject(o)) throw bad(`${root} is required and must be an object.`);
  return o;
}

function optString(o: Record<string, unknown>, key: string, path: string, max = 255): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) throw bad(`${path} must be a string of at most ${max} characters.`);
  return v;
}

function reqString(o: Record<string, unknown>, key: string, path: string, max = 255): string {
  const v = optString(o, key, path, max);
  if (v === undefined || v.length === 0) throw bad(`${path} is required.`);
  return v;
}

function optBool(o: Record<string, unknown>, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${path} must be true or false.`);
  return v;
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
    const description = optString(o, 'description', 'credential.description');
    const r = await iam.createAccessKey(c, { userId: reqString(o, 'user_id', 'credential.user_id', 64), ...(description !== undefined ? { description } : {}) });
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
    const status = optString(o, 'status', 'credential.status');
    if (status !== undefined && status !== 'active' && status !== 'inactive') throw bad('credential.status must be active or inactive.');
    const description = optString(o, 'description', 'credential.description');
    if (status === undefined && description === undefined) throw bad('credential needs status or description.');
    const k = await iam.updateAccessKey(c, param(req, 'access_key'), { ...(status ? { status } : {}), ...(description !== undefined ? { description } : {}) });
    return json(reply, 200, { credential: permanentKeyBody(k) });
  }));
  app.delete('/v3.0/OS-CREDENTIAL/credentials/:access_key', { config: IAM.deleteKey }, route(async (c, req, reply) => {
    await iam.deleteAccessKey(c, param(req, 'access_key'));
    return reply.code(204).send();
  }));

  // ---- temporary credentials

  app.post('/v3.0/OS-CREDENTIAL/securitytokens', { config: IAM.securityToken }, route(async (c, req, reply) => {
    const auth = rootObject(req, 'auth');
    const identity = auth['identity'];
    if (!isObject(identity)) throw bad('auth.identity is required.');
    const methods = identity['methods'];
    if (!Array.isArray(methods) || methods.length !== 1 || methods[0] !== 'token') throw bad('auth.identity.methods must be ["token"] (temporary credentials by token).');
    const t = identity['token'] ?? {};
    if (!isObject(t)) throw bad('auth.identity.token must be an object.');
    const d = t['duration_seconds'] ?? 900;
    if (typeof d !== 'number') throw bad('auth.identity.token.duration_seconds must be a number.');
    // The token named in the body, or the caller's own (X-Auth-Token).
    const named = optString(t, 'id', 'auth.identity.token.id', 1024);
    const own = req.headers['x-auth-token'];
    const token = named ?? (typeof own === 'string' ? own : undefined);
    if (token === undefined) throw bad('auth.identity.token.id is required when the call is signed with an access key.');
    const r = await iam.createTemporaryCredential(c, token, d);
    return json(reply, 201, { credential: { access: r.ak, secret: r.sk, securitytoken: r.securityToken, expires_at: new Date(r.expiresAt).toISOString() } });
  }));

  // ---- users

  app.post('/v3/users', { config: IAM.createUser }, route(async (c, req, reply) => {
    const o = rootObject(req, 'user');
    const domainId = optString(o, 'domain_id', 'user.domain_id', 64);
    const password = optString(o, 'password', 'user.password', 128);
    const enabled = optBool(o, 'enabled', 'user.enabled');
    const description = optString(o, 'description', 'user.description');
    const u = await iam.createUser(c, {
      name: reqString(o, 'name', 'user.name', 64), ...(domainId !== undefined ? { domainId } : {}), ...(password !== undefined ? { password } : {}),
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
    const enabled = optBool(o, 'enabled', 'user.enabled');
    const description = optString(o, 'description', 'user.description');
    const name = optString(o, 'name', 'user.name', 64);
    const password = optString(o, 'password', 'user.password', 128);
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
    await iam.changePassword(c, param(req, 'user_id'), reqString(o, 'original_password', 'user.original_password', 128), reqString(o, 'password', 'user.password', 128));
    return reply.code(204).send();
  }));
  app.delete('/v3/users/:user_id', { config: IAM.deleteUser }, route(async (c, req, reply) => {
    await iam.deleteUser(c, param(req, 'user_id'));
    return reply.code(204).send();
  }));

  // ---- projects

  app.post('/v3/projects', { config: IAM.createProject }, route(async (c, req, reply) => {
    const o = rootObject(req, 'project');
    const domainId = optString(o, 'domain_id', 'project.domain_id', 64);
    const description = optString(o, 'description', 'project.description');
    const p = await iam.createProject(c, {
      name: reqString(o, 'name', 'project.name', 64), ...(domainId !== undefined ? { domainId } : {}), ...(description !== undefined ? { description } : {}),
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
    const name = optString(o, 'name', 'project.name', 64);
    const description = optString(o, 'description', 'project.description');
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
