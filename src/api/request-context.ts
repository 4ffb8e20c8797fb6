/** Per-request state the API keeps on fastify requests. */
import type { Principal } from '../identity/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Raw body bytes as received (empty Buffer when none). */
    rawBody: Buffer | null;
    /** Set by the auth hook on authenticated routes. */
    principal: Principal | null;
  }
}

export {};
