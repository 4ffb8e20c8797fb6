/** Per-request state the API keeps on fastify requests. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../identity/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Raw body bytes as received (empty Buffer when none). */
    rawBody: Buffer | null;
    /** Set by the auth hook on authenticated routes. */
    principal: Principal | null;
    /** An audit event's log fields, written on this request's access line (see accessLineAudit). */
    auditLog: Record<string, unknown> | null;
  }
}

/**
 * A sink for an audit event's log fields that keeps them for the request's access line: one line
 * per call, with the event (`audit`, `tokenRef`, ...) beside the status and duration. The access
 * line takes them (and clears `auditLog`); should the client go before its answer was written, no
 * access line is written (fastify's onResponse does not run), and the event gets its own line
 * (`audit <kind>`) when the response closes.
 */
export function accessLineAudit(req: FastifyRequest, reply: FastifyReply): (fields: Record<string, unknown>) => void {
  return (fields) => {
    req.auditLog = fields;
    reply.raw.once('close', () => {
      if (req.auditLog === null) return;
      req.auditLog = null;
      req.log.info(fields, `audit ${String(fields['audit'])}`);
    });
  };
}
