/**
 * Our extension of the ECS API (not Huawei calls): a project's console session recordings, and
 * the playback page that plays them (same origin, IAM token auth).
 *
 *   GET /v1/{project_id}/recordings[?server_id=&session_id=&limit=]   list, newest first
 *   GET /v1/{project_id}/recordings/{recording_id}                     one, with its integrity
 *   GET /v1/{project_id}/recordings/{recording_id}/data[?seekable=1]   its records (decrypted; seekable: re-encoded, with keyframes, cached once finished)
 *   GET /playback.html#project=...&recording=...                       the player (web/playback.html)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConsoleError, ProjectMismatchError } from '../errors.js';
import { ACTION_RECORDING_GET } from '../identity/types.js';
import type { RecordingService } from '../recording/recording-service.js';
import type { RecordingRecord } from '../recording/types.js';
import type { StaticHandler } from '../web/static-handler.js';
import { huaweiTime } from './ecs-routes.js';
import type { ApiDeps } from './api-server.js';
import { declaredInt } from './query.js';
import { RECORDINGS } from './route-docs.js';

interface RecordingDeps extends ApiDeps {
  readonly recordings: RecordingService;
  /** Serves /playback.html and its assets (/static/..., /novnc/...). */
  readonly playbackPage?: StaticHandler;
  authenticate(req: FastifyRequest): Promise<void>;
}

const ID = /^[0-9a-f-]{36}$/;

export class RecordingNotFoundError extends ConsoleError {
  constructor(id: string) {
    super('NOT_FOUND', `Recording[${id}] could not be found.`, { kind: 'recording' });
  }
}

function view(r: RecordingRecord): Record<string, unknown> {
  return {
    id: r.id, session_id: r.sessionId, server_id: r.serverId, project_id: r.projectId, node_id: r.nodeId,
    started: huaweiTime(r.startedAt), ended: r.endedAt === null ? null : huaweiTime(r.endedAt), duration_ms: r.durationMs,
    bytes: r.bytes, keystrokes: r.keystrokes, expires: huaweiTime(r.expiresAt),
  };
}

export function registerRecordingRoutes(app: FastifyInstance, deps: RecordingDeps): void {
  const auth = async (req: FastifyRequest<{ Params: { project_id: string } }>): Promise<string> => {
    const projectId = req.params.project_id;
    await deps.authenticate(req);
    const h = req.headers['x-project-id'];
    if (typeof h === 'string' && h !== projectId) throw new ProjectMismatchError();
    deps.identity.authorize(req.principal!, projectId, ACTION_RECORDING_GET);
    return projectId;
  };
  const find = async (projectId: string, id: string): Promise<RecordingRecord> => {
    const r = ID.test(id) ? await deps.recordings.get(id) : null;
    if (!r || r.projectId !== projectId) throw new RecordingNotFoundError(id);
    return r;
  };

  app.get<{ Params: { project_id: string }; Querystring: Record<string, unknown> }>('/v1/:project_id/recordings', { config: RECORDINGS.list }, async (req, reply) => {
    const projectId = await auth(req);
    const q = req.query;
    const str = (k: string): string | undefined => (typeof q[k] === 'string' && q[k] !== '' ? (q[k] as string) : undefined);
    const limitRaw = str('limit');
    const lim = declaredInt(req, 'limit');
    if (limitRaw !== undefined && !/^\d{1,4}$/.test(limitRaw)) throw new ConsoleError('VALIDATION', `Invalid parameter: limit must be an integer from ${lim.min} to ${lim.max}.`);
    // Four digits, then taken within the bounds.
    const limit = Math.min(lim.max, Math.max(lim.min, Number(limitRaw ?? lim.dflt)));
    const serverId = str('server_id');
    const sessionId = str('session_id');
    const list = await deps.recordings.list({ projectId, limit, ...(serverId ? { serverId } : {}), ...(sessionId ? { sessionId } : {}) });
    return reply.type('application/json').header('Cache-Control', 'no-store').send({ recordings: list.map(view) });
  });

  app.get<{ Params: { project_id: string; recording_id: string } }>('/v1/:project_id/recordings/:recording_id', { config: RECORDINGS.show }, async (req, reply) => {
    const projectId = await auth(req);
    const r = await find(projectId, req.params.recording_id);
    return reply.type('application/json').header('Cache-Control', 'no-store').send({ recording: view(r) });
  });

  app.get<{ Params: { project_id: string; recording_id: string }; Querystring: Record<string, unknown> }>('/v1/:project_id/recordings/:recording_id/data', { config: RECORDINGS.data }, async (req, reply) => {
    const projectId = await auth(req);
    const r = await find(projectId, req.params.recording_id);
    const raw = req.query['seekable'];
    if (raw !== undefined && raw !== '1') throw new ConsoleError('VALIDATION', 'Invalid parameter: seekable must be 1.');
    const read = await deps.recordings.read(r);
    let records = read.records;
    let seekable: string | null = null;
    let cache: string | null = null;
    if (raw === '1') {
      // Built once per finished recording and kept sealed beside it (seekable-cache.ts).
      const s = await deps.recordings.seekableForm(r, read);
      seekable = s.form ? `keyframes=${s.form.keyframes}` : 'no';
      cache = s.cache;
      if (s.form) records = s.form.records;
    }
    req.log.info({ recording: r.id, integrity: read.integrity, chunks: read.chunks, seekable, seekableCache: cache, credential: req.principal?.credentialId }, 'recording played');
    return reply.type('application/octet-stream').headers({
      'Cache-Control': 'no-store', 'X-Recording-Integrity': read.integrity, 'X-Recording-Chunks': String(read.chunks),
      ...(seekable ? { 'X-Recording-Seekable': seekable } : {}), ...(cache ? { 'X-Recording-Seekable-Cache': cache } : {}),
    }).send(records);
  });

  const page = deps.playbackPage;
  if (page) {
    const serve = async (req: FastifyRequest, reply: import('fastify').FastifyReply): Promise<void> => {
      reply.hijack();
      if (!page(req.raw, reply.raw)) {
        reply.raw.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        reply.raw.end('Not Found\n');
      }
    };
    // fastify answers HEAD through the GET route.
    const pages = { '/playback.html': 'The playback page', '/static/*': 'The playback page\'s scripts and styles', '/novnc/*': 'noVNC\'s modules (the player decodes with them)' };
    for (const [path, what] of Object.entries(pages)) app.get(path, { config: RECORDINGS.page(what) }, serve);
  }
}
