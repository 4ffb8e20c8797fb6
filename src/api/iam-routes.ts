/**
 * IAM token calls (Keystone v3 shapes, as Huawei IAM answers them): POST /v3/auth/tokens
 * (password method, project scope), GET (validate) and DELETE (revoke) with X-Subject-Token.
 */
import type { FastifyInstance } from 'fastify';
import { ConsoleError } from '../errors.js';
import type { IssuedIamToken } from '../identity/identity-service.js';
import { sendIamError, type IamAuth } from './admin-auth.js';
import { declaredBody } from './body.js';
import { baseUrlOf } from './nova-routes.js';
import { serviceCatalog } from './service-catalog.js';
import type { ApiDeps } from './api-server.js';
import { IAM_TOKENS } from './route-docs.js';

/** Keystone-style time: `2026-01-01T00:00:00.000000Z`. */
export function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function tokenBody(t: IssuedIamToken, base: string): unknown {
  const domain = { id: t.domain.id, name: t.domain.name };
  return {
    token: {
      methods: ['password'],
      expires_at: keystoneTime(t.expiresAt),
      issued_at: keystoneTime(t.issuedAt),
      user: { id: t.user.id, name: t.user.name, domain, password_expires_at: '' },
      project: { id: t.project.id, name: t.project.name, domain },
      roles: [{ id: '0', name: 'op_service' }],
      catalog: serviceCatalog(base, t.project),
    },
  };
}

interface TokenRequest {
  auth: { identity: { password: { user: { name: string; password: string; domain: { name: string } } } }; scope: { project: { id?: string; name?: string } } };
}

/** A body checked against IAM_TOKENS.issue.body (route-docs.ts): who, and which project (by id, else by name). */
function parseAuthBody(b: unknown): { domain: string; user: string; password: string; projectId?: string; projectName?: string } {
  const { identity, scope } = (b as TokenRequest).auth;
  const user = identity.password.user;
  const out = { domain: user.domain.name, user: user.name, password: user.password };
  if (scope.project.id !== undefined) return { ...out, projectId: scope.project.id };
  if (scope.project.name === undefined) throw new ConsoleError('BODY_INVALID', 'auth.scope.project.name is required (or its id).');
  return { ...out, projectName: scope.project.name };
}

function subjectToken(h: string | string[] | undefined): string {
  if (typeof h !== 'string' || h.length === 0) throw new ConsoleError('BODY_INVALID', 'X-Subject-Token header is required.');
  return h;
}

export function registerIamRoutes(app: FastifyInstance, deps: ApiDeps & { auth: IamAuth }): void {
  app.post('/v3/auth/tokens', { config: IAM_TOKENS.issue }, async (req, reply) => {
    try {
      const t = await deps.identity.issueIamToken(parseAuthBody(declaredBody(req)), { address: req.ip });
      return reply.code(201).header('X-Subject-Token', t.token).type('application/json').send(tokenBody(t, baseUrlOf(req)));
    } catch (e) {
      return sendIamError(reply, e);
    }
  });

  // Validate and revoke: the token's own user or an administrator of its domain (the caller signs
  // with AK/SK or carries its own IAM token); another user's token is 403, a token that is not
  // valid 404, as Keystone answers.
  app.get('/v3/auth/tokens', { config: IAM_TOKENS.validate }, async (req, reply) => {
    try {
      const t = await deps.identity.inspectIamToken(await deps.auth.authenticate(req), subjectToken(req.headers['x-subject-token']));
      return reply.code(200).header('X-Subject-Token', t.token).type('application/json').send(tokenBody(t, baseUrlOf(req)));
    } catch (e) {
      return sendIamError(reply, e);
    }
  });

  app.delete('/v3/auth/tokens', { config: IAM_TOKENS.revoke }, async (req, reply) => {
    try {
      await deps.identity.revokeIamToken(await deps.auth.authenticate(req), subjectToken(req.headers['x-subject-token']));
      return reply.code(204).send();
    } catch (e) {
      return sendIamError(reply, e);
    }
  });
}
