/**
 * Who is calling, as Huawei IAM's API decides it, for every route that needs an authenticated
 * caller (ECS, IAM, the admin API):
 *
 * - `authenticate(req)`: an IAM token (`X-Auth-Token`) or an `SDK-HMAC-SHA256` signature (the
 *   SDKs' BasicCredentials; GlobalCredentials, which add a signed `X-Domain-Id`; temporary
 *   credentials, which add a signed `X-Security-Token`), then the per-credential rate limit. Sets
 *   and returns `req.principal`. Throws AuthError (401) or RateLimitedError (429).
 * - `requireDomainAdmin(req, action)`: the same, then the caller must be a domain administrator
 *   (a member of Huawei's `admin` group of its domain; `ecs-console user create --admin` makes the
 *   first). Throws ForbiddenError(action) (403) otherwise.
 * - `sendIamError(reply, e)`: answers those errors with Huawei IAM's bodies (Keystone's
 *   `{"error":{"code","title","message"}}` for 401/403/404/409/429, `IAM.0011` for a bad body);
 *   other errors are rethrown (the API's error handler answers them).
 *
 * Routes on other prefixes may use `authenticate`/`requireDomainAdmin` and let the API's error
 * handler answer in the ECS gateway shape (APIGW.0301 / Pdp.0001) instead.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, ConflictError, ForbiddenError, NotFoundError, RateLimitedError, isConsoleError } from '../errors.js';
import { KeyLimitError } from '../identity/iam-admin-service.js';
import type { IdentityService } from '../identity/identity-service.js';
import type { Principal } from '../identity/types.js';
import type { RateLimiter } from '../util/rate-limiter.js';
import './request-context.js';

const EMPTY = Buffer.alloc(0);

export class IamAuth {
  constructor(
    private readonly identity: IdentityService,
    private readonly perCredential: RateLimiter,
    private readonly perCredentialLimit: number,
  ) {}

  /** Authenticates the caller (IAM token or AK/SK signature) and rate-limits its credential. */
  async authenticate(req: FastifyRequest): Promise<Principal> {
    const token = req.headers['x-auth-token'];
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    };
    const p = typeof token === 'string'
      ? await this.identity.verifyIamToken(token)
      : await this.identity.verifySignedRequest({
        method: req.method, url: req.raw.url ?? req.url, header, body: req.rawBody ?? EMPTY, sourceAddress: req.ip, requestId: req.id,
      });
    req.principal = p;
    const d = this.perCredential.hit(p.credentialId);
    if (!d.allowed) throw new RateLimitedError(`The throttling threshold has been reached: per credential ${this.perCredentialLimit}/min`, d.retryAfterSeconds);
    return p;
  }

  /** Authenticates, then requires a domain administrator (ForbiddenError naming `action` otherwise). */
  async requireDomainAdmin(req: FastifyRequest, action: string): Promise<Principal> {
    const p = await this.authenticate(req);
    this.identity.requireDomainAdmin(p, action);
    return p;
  }
}

/** Keystone's error body, as Huawei IAM answers its calls. */
export function keystoneError(reply: FastifyReply, code: number, title: string, message: string): FastifyReply {
  return reply.code(code).type('application/json').send({ error: { code, title, message } });
}

/** Huawei IAM's answer to an error of an IAM call; rethrows what it does not map. */
export function sendIamError(reply: FastifyReply, e: unknown): FastifyReply {
  if (e instanceof KeyLimitError) return keystoneError(reply, 400, 'Bad Request', 'akSkNumExceed');
  if (isConsoleError(e) && (e.code === 'BODY_EMPTY' || e.code === 'BODY_INVALID' || e.code === 'VALIDATION')) {
    return reply.code(400).type('application/json').send({ error_msg: `Request body is invalid. ${e.message}`, error_code: 'IAM.0011' });
  }
  if (e instanceof AuthError) return keystoneError(reply, 401, 'Unauthorized', e.message);
  if (e instanceof ForbiddenError) return keystoneError(reply, 403, 'Forbidden', `You are not authorized to perform the requested action: ${e.action}.`);
  if (e instanceof RateLimitedError) return keystoneError(reply.header('Retry-After', String(e.retryAfterSeconds)), 429, 'Too Many Requests', e.message);
  if (e instanceof NotFoundError && e.kind === 'token') {
    return reply.code(404).type('application/json').send({ error_msg: 'Could not find token.', error_code: 'IAM.0004' });
  }
  if (e instanceof NotFoundError) return keystoneError(reply, 404, 'Not Found', `Could not find ${e.kind}: ${e.id}.`);
  if (e instanceof ConflictError) return keystoneError(reply, 409, 'Conflict', e.message);
  throw e;
}
