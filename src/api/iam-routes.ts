/**
 * IAM token calls (Keystone v3 shapes, as Huawei IAM answers them): POST /v3/auth/tokens
 * (password method, project scope), GET (validate) and DELETE (revoke) with X-Subject-Token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, ConsoleError, ForbiddenError, NotFoundError, RateLimitedError, isConsoleError } from '../errors.js';
import type { IssuedIamToken } from '../identity/identity-service.js';
import type { Principal } from '../identity/types.js';
import { isObject, parseJsonBody } from './body.js';
import type { ApiDeps } from './api-server.js';

/** Keystone-style time: `2026-01-01T00:00:00.000000Z`. */
function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function tokenBody(t: IssuedIamToken): unknown {
  const domain = { id: t.domain.id, name: t.domain.name };
  return {
    token: {
      methods: ['password'],
      expires_at: keystoneTime(t.expiresAt),
      issued_at: keystoneTime(t.issuedAt),
      user: { id: t.user.id, name: t.user.name, domain, password_expires_at: '' },
      project: { id: t.project.id, name: t.project.name, domain },
      roles: [{ id: '0', name: 'op_service' }],
      catalog: [],
    },
  };
}

/** Keystone's error body, as Huawei IAM answers its Keystone-style calls. */
function keystoneError(reply: FastifyReply, code: number, title: string, message: string): FastifyReply {
  return reply.code(code).type('application/json').send({ error: { code, title, message } });
}

/**
 * IAM answers: 400 `IAM.0011` for a bad body; 401 Keystone-shaped for failed authentication; 403
 * Keystone-shaped when the caller may not act on another user's token; 404 `IAM.0004` for a
 * subject token that is not valid; 429 Keystone-shaped, with Retry-After, for throttled logins.
 */
function iamError(reply: FastifyReply, e: unknown): FastifyReply {
  if (isConsoleError(e) && (e.code === 'BODY_EMPTY' || e.code === 'BODY_INVALID' || e.code === 'VALIDATION')) {
    return reply.code(400).type('application/json').send({ error_msg: `Request body is invalid. ${e.message}`, error_code: 'IAM.0011' });
  }
  if (e instanceof AuthError) return keystoneError(reply, 401, 'Unauthorized', e.message);
  if (e instanceof ForbiddenError) return keystoneError(reply, 403, 'Forbidden', `You are not authorized to perform the requested action: ${e.action}.`);
  if (e instanceof RateLimitedError) return keystoneError(reply.header('Retry-After', String(e.retryAfterSeconds)), 429, 'Too Many Requests', e.message);
  if (e instanceof NotFoundError && e.kind === 'token') {
    return reply.code(404).type('application/json').send({ error_msg: 'Could not find token.', error_code: 'IAM.0004' });
  }
  throw e;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new ConsoleError('BODY_INVALID', `${path} must be a non-empty string.`);
  return v;
}

function parseAuthBody(raw: Buffer, ct: string | undefined): { domain: string; user: string; password: string; projectId?: string; projectName?: string } {
  const b = parseJsonBody(raw, ct);
  const auth = isObject(b) ? b['auth'] : undefined;
  const identity = isObject(auth) ? auth['identity'] : undefined;
  if (!isObject(identity)) throw new ConsoleError('BODY_INVALID', 'auth.identity is required.');
  const methods = identity['methods'];
  if (!Array.isArray(methods) || !methods.includes('password')) throw new ConsoleError('BODY_INVALID', 'auth.identity.methods must include "password".');
  const pw = identity['password'];
  const user = isObject(pw) ? pw['user'] : undefined;
  if (!isObject(user)) throw new ConsoleError('BODY_INVALID', 'auth.identity.password.user is required.');
  const dom = user['domain'];
  if (!isObject(dom)) throw new ConsoleError('BODY_INVALID', 'auth.identity.password.user.domain is required.');
  const scope = isObject(auth) ? auth['scope'] : undefined;
  const project = isObject(scope) ? scope['project'] : undefined;
  if (!isObject(project)) throw new ConsoleError('BODY_INVALID', 'auth.scope.project is required (tokens are project-scoped).');
  const out = {
    domain: str(dom['name'], 'auth.identity.password.user.domain.name'),
    user: str(user['name'], 'auth.identity.password.user.name'),
    password: str(user['password'], 'auth.identity.password.user.password'),
  };
  if (project['id'] !== undefined) return { ...out, projectId: str(project['id'], 'auth.scope.project.id') };
  return { ...out, projectName: str(project['name'], 'auth.scope.project.name') };
}

function subjectToken(h: string | string[] | undefined): string {
  if (typeof h !== 'string' || h.length === 0) throw new ConsoleError('BODY_INVALID', 'X-Subject-Token header is required.');
  return h;
}

export function registerIamRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post('/v3/auth/tokens', async (req, reply) => {
    try {
      const t = await deps.identity.issueIamToken(parseAuthBody(req.rawBody ?? Buffer.alloc(0), req.headers['content-type']), { address: req.ip });
      return reply.code(201).header('X-Subject-Token', t.token).type('application/json').send(tokenBody(t));
    } catch (e) {
      return iamError(reply, e);
    }
  });

  /** The caller, by its own IAM token (X-Auth-Token). */
  const caller = (req: FastifyRequest): Promise<Principal> => {
    const token = req.headers['x-auth-token'];
    if (typeof token !== 'string') throw new AuthError('AUTH_MISSING', 'X-Auth-Token is required.');
    return deps.identity.verifyIamToken(token);
  };

  // Validate and revoke: the token's own user only (administrators come with the IAM lifecycle);
  // another user's token is 403, a token that is not valid 404, as Keystone answers.
  app.get('/v3/auth/tokens', async (req, reply) => {
    try {
      const t = await deps.identity.inspectIamToken(await caller(req), subjectToken(req.headers['x-subject-token']));
      return reply.code(200).header('X-Subject-Token', t.token).type('application/json').send(tokenBody(t));
    } catch (e) {
      return iamError(reply, e);
    }
  });

  app.delete('/v3/auth/tokens', async (req, reply) => {
    try {
      await deps.identity.revokeIamToken(await caller(req), subjectToken(req.headers['x-subject-token']));
      return reply.code(204).send();
    } catch (e) {
      return iamError(reply, e);
    }
  });
}
