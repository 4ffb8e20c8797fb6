/**
 * Our extension of the ECS API (not a Huawei call): a server's console screenshot.
 * GET /v1/{project_id}/cloudservers/{server_id}/screenshot?format=png|jpeg
 *
 * Every request that authenticated is audited (`screenshot`: who, which server, from where, what
 * it came to; never the image): a screen shows what a session would.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Auditor } from '../audit/auditor.js';
import { ConsoleError, isConsoleError, ProjectMismatchError } from '../errors.js';
import { ACTION_SCREENSHOT } from '../identity/types.js';
import type { ScreenshotFormat, ScreenshotService } from '../screenshot/screenshot-service.js';
import type { ApiDeps } from './api-server.js';
import { declaredEnum } from './query.js';
import { ECS } from './route-docs.js';

interface ScreenshotDeps extends ApiDeps {
  readonly screenshots: ScreenshotService;
  readonly auditor?: Auditor;
  authenticate(req: FastifyRequest): Promise<void>;
}

const TYPES: Record<ScreenshotFormat, string> = { png: 'image/png', jpeg: 'image/jpeg' };

export function registerScreenshotRoutes(app: FastifyInstance, deps: ScreenshotDeps): void {
  app.get<{ Params: { project_id: string; server_id: string }; Querystring: Record<string, unknown> }>('/v1/:project_id/cloudservers/:server_id/screenshot', { config: ECS.screenshot }, async (req, reply) => {
    const { project_id: projectId, server_id: serverId } = req.params;
    await deps.authenticate(req);
    const p = req.principal!;
    const audit = (outcome: 'ok' | 'refused', detail: Record<string, string | number>): Promise<void> | undefined => deps.auditor?.record('screenshot', {
      projectId, serverId, actorUserId: p.userId, actorCredential: p.credentialId, requestId: req.id, clientAddress: req.ip, outcome, detail,
    });
    let shot;
    let format: ScreenshotFormat = 'png';
    try {
      const h = req.headers['x-project-id'];
      if (typeof h === 'string' && h !== projectId) throw new ProjectMismatchError();
      deps.identity.authorize(p, projectId, ACTION_SCREENSHOT);
      const raw = req.query['format'];
      const formats = declaredEnum(req, 'format');
      const f = (raw === undefined || raw === '' ? formats.dflt : raw) as ScreenshotFormat;
      if (!formats.values.includes(f)) throw new ConsoleError('VALIDATION', `Invalid parameter: format must be ${formats.values.join(' or ')}.`);
      format = f;
      shot = await deps.screenshots.take(projectId, serverId, format);
    } catch (e) {
      // The refusal is the caller's answer; an audit store that fails too does not hide it.
      await audit('refused', { format, error: isConsoleError(e) ? e.code : 'INTERNAL' })?.catch((ae: unknown) => req.log.error({ err: ae }, 'screenshot refusal not audited'));
      throw e;
    }
    // NOTE: no image leaves without its audit entry (an audit store that fails answers 500).
    await audit('ok', { format, width: shot.width, height: shot.height, bytes: shot.data.length });
    return reply.type(TYPES[format]).headers({ 'Cache-Control': 'no-store', 'X-Screen-Width': String(shot.width), 'X-Screen-Height': String(shot.height) }).send(shot.data);
  });
}
