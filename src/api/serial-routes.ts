/**
 * Console output in Huawei's shape (our extension beside `remote_console`):
 * `GET /v1/{project_id}/cloudservers/{server_id}/console_output?length=N&cursor=B`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConsoleError, ProjectMismatchError } from '../errors.js';
import type { ConsoleOutputService } from '../serial/console-output-service.js';
import { declaredInt } from './query.js';
import { ECS } from './route-docs.js';

/**
 * `length` (last N lines) and `cursor` (a byte offset) as integers up to `maxOf` them (the route's
 * declared maximum: 10000 lines); ConsoleError VALIDATION otherwise.
 */
export function outputParams(q: Record<string, unknown>, maxOf: (name: 'length' | 'cursor') => number): { length?: number; cursor?: number } {
  const out: { length?: number; cursor?: number } = {};
  for (const name of ['length', 'cursor'] as const) {
    const max = maxOf(name);
    const raw = q[name];
    if (raw === undefined || raw === '') continue;
    if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw) || Number(raw) > max) {
      throw new ConsoleError('VALIDATION', `Invalid parameter: ${name} must be an integer from 0 to ${max}.`);
    }
    out[name] = Number(raw);
  }
  return out;
}

export function registerSerialRoutes(app: FastifyInstance, deps: { authenticate(req: FastifyRequest): Promise<void>; output: ConsoleOutputService }): void {
  app.get<{ Params: { project_id: string; server_id: string }; Querystring: Record<string, string> }>(
    '/v1/:project_id/cloudservers/:server_id/console_output',
    { config: ECS.consoleOutput },
    async (req, reply) => {
      const { project_id: projectId, server_id: serverId } = req.params;
      await deps.authenticate(req);
      const h = req.headers['x-project-id'];
      if (typeof h === 'string' && h !== projectId) throw new ProjectMismatchError();
      const o = await deps.output.output(req.principal!, projectId, serverId, outputParams(req.query, (name) => declaredInt(req, name).max));
      return reply.type('application/json').send({ output: o.output, cursor: o.cursor, start: o.start, missed: o.missed, live: o.live });
    },
  );
}
