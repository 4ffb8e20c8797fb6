/**
 * The operator's web page on the API listener (`/operator/`, web/operator.html): servers with live
 * screenshot thumbnails and their consoles, live sessions (end with a reason), the audit search,
 * recordings and their playback. The page signs in with the IAM token call and then calls the
 * admin API, the screenshot, remote_console and recording calls like any client; the route only
 * serves its file (the console page's strict CSP, no-store). Its scripts and styles come from
 * `/static/...`, served with the playback page's (recording-routes.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StaticHandler } from '../web/static-handler.js';
import type { RouteDoc } from './openapi.js';

/** The page's path. */
export const OPERATOR_PAGE_PATH = '/operator/';

const pageDoc: RouteDoc = {
  summary: 'The operator\'s web page (HTML; signs in with POST /v3/auth/tokens, then calls the admin API)',
  tags: ['web'],
  auth: 'none',
  responses: { '200': { description: 'The page, with a strict Content-Security-Policy.', contentType: 'text/html', schema: { type: 'string' } } },
};

const redirectDoc: RouteDoc = {
  summary: 'Redirects to /operator/',
  tags: ['web'],
  auth: 'none',
  responses: { '308': { description: 'Location: /operator/', contentType: 'text/plain', schema: { type: 'string' } } },
};

export function registerOperatorPageRoutes(app: FastifyInstance, page: StaticHandler): void {
  app.get(OPERATOR_PAGE_PATH, { config: { openapi: pageDoc } }, async (req: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    if (!page(req.raw, reply.raw)) {
      reply.raw.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      reply.raw.end('Not Found\n');
    }
  });
  // NOTE: a fixed Location: never built from the request (no open redirect).
  app.get('/operator', { config: { openapi: redirectDoc } }, async (req, reply) => reply.code(308).header('Location', OPERATOR_PAGE_PATH).type('text/plain; charset=utf-8').send('See /operator/\n'));
}
