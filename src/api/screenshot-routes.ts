/**
 * Our extension of the ECS API (not a Huawei call): a server's console screenshot.
 * GET /v1/{project_id}/cloudservers/{server_id}/screenshot?format=png|jpeg
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConsoleError, ProjectMismatchError } from '../errors.js';
import { ACTION_SCREENSHOT } from '../identity/types.js';
import type { ScreenshotFormat, ScreenshotService } from '../screenshot/screenshot-service.js';
import type { ApiDeps } from './api-server.js';
import { declaredEnum } from './query.js';
import { ECS } from './route-docs.js';

interface ScreenshotDeps extends ApiDeps {
  readonly screenshots: ScreenshotService;
  authenticate(req: FastifyRequest): Promise<void>;
}

const TYPES: Record<ScreenshotFormat, string> = { png: 'image/png', jpeg: 'image/jpeg' };

export function registerScreenshotRoutes(app: FastifyInstance, deps: ScreenshotDeps): void {
  app.get<{ Params: { project_id: string; server_id: string }; Querystring: Record<string, unknown> }>('/v1/:project_id/cloudservers/:server_id/screenshot', { config: ECS.screenshot }, async (req, reply) => {
    const { project_id: projectId, server_id: serverId } = req.params;
    await deps.authenticate(req);
    const h = req.headers['x-project-id'];
    if (typeof h === 'string' && h !== projectId) throw new ProjectMismatchError();
    deps.identity.authorize(req.principal!, projectId, ACTION_SCREENSHOT);
    const raw = req.query['format'];
    const formats = declaredEnum(req, 'format');
    const format = (raw === undefined || raw === '' ? formats.dflt : raw) as ScreenshotFormat;
    if (!formats.values.includes(format)) throw new ConsoleError('VALIDATION', `Invalid parameter: format must be ${formats.values.join(' or ')}.`);
    const shot = await deps.screenshots.take(projectId, serverId, format);
    return reply.type(TYPES[format]).headers({ 'Cache-Control': 'no-store', 'X-Screen-Width': String(shot.width), 'X-Screen-Height': String(shot.height) }).send(shot.data);
  });
}
