/**
 * The admin API's recording policies (`/admin/v1`): who is recorded, per project or per server (a
 * server's policy wins over its project's), as `ecs-console recording policy` sets them from the
 * CLI. Registered by registerAdminRoutes with its helpers (domain administrator, own project and
 * server, body check, IAM error bodies); each change is an operator action in the audit trail.
 *
 *   GET    /admin/v1/recording-policies[?project_id=]
 *   PUT    /admin/v1/projects/{project_id}/recording-policy    {"recording_policy": {...}}
 *   PUT    /admin/v1/servers/{server_id}/recording-policy      {"recording_policy": {...}}
 *   DELETE /admin/v1/projects/{project_id}/recording-policy
 *   DELETE /admin/v1/servers/{server_id}/recording-policy
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Auditor } from '../audit/auditor.js';
import { NotFoundError } from '../errors.js';
import type { Principal } from '../identity/types.js';
import type { OperatorContext } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import type { RecordingService } from '../recording/recording-service.js';
import type { PolicyScope, RecordingPolicy } from '../recording/types.js';
import { huaweiTime } from './ecs-routes.js';
import * as S from './admin-schemas.js';
import type { RouteDoc } from './openapi.js';

/** What registerAdminRoutes lends these routes. */
export interface AdminRouteKit {
  readonly prefix: string;
  readonly recordings: RecordingService;
  readonly auditor?: Auditor;
  admin(req: FastifyRequest, action: string): Promise<{ p: Principal; ctx: OperatorContext }>;
  ownProject(p: Principal, projectId: string): Promise<void>;
  domainProjects(p: Principal): Promise<string[]>;
  ownServer(p: Principal, id: string): Promise<Server>;
  body(req: FastifyRequest, schema: object): Record<string, unknown>;
  answer(reply: FastifyReply, run: () => Promise<FastifyReply>): Promise<FastifyReply>;
  doc(summary: string, responses: RouteDoc['responses'], extra?: Partial<RouteDoc>): { openapi: RouteDoc };
  readonly actions: { readonly read: string; readonly write: string };
}

/** A policy as the admin API shows it. */
export function policyJson(p: RecordingPolicy): Record<string, unknown> {
  return {
    scope: p.scope, scope_id: p.scopeId, project_id: p.projectId, enabled: p.enabled, keystrokes: p.keystrokes,
    retention_days: p.retentionDays, quota_bytes: p.quotaBytes, updated: huaweiTime(p.updatedAt), updated_by: p.updatedBy,
  };
}

export function registerAdminRecordingRoutes(app: FastifyInstance, kit: AdminRouteKit): void {
  const { prefix, recordings } = kit;
  const common = { attachValidation: true } as const;
  const one = { description: 'The policy.', schema: { type: 'object', properties: { recording_policy: S.recordingPolicyOutput } } };
  const notFound = { description: 'Not found (Keystone body).' };

  /** The project a scope names, when it is the caller's domain's (NotFoundError otherwise). */
  const target = async (p: Principal, scope: PolicyScope, id: string): Promise<string> => {
    if (scope === 'project') {
      await kit.ownProject(p, id);
      return id;
    }
    return (await kit.ownServer(p, id)).projectId;
  };

  const audit = async (ctx: OperatorContext, projectId: string, scope: PolicyScope, id: string, action: string, detail: Record<string, unknown>): Promise<void> => {
    await kit.auditor?.record('operator', {
      projectId, serverId: scope === 'server' ? id : null, target: `${scope}:${id}`, actorUserId: ctx.actor.userId, actorCredential: ctx.actor.credential,
      requestId: ctx.requestId ?? null, clientAddress: ctx.clientAddress ?? null, outcome: 'ok', detail: { action, door: ctx.door, ...detail },
    });
  };

  app.get(`${prefix}/recording-policies`, {
    ...common, schema: { querystring: S.listPoliciesQuery },
    config: kit.doc('Recording policies of your domain\'s projects and servers (a server\'s wins over its project\'s; none: not recorded)', {
      '200': { description: 'The policies.', schema: { type: 'object', properties: { recording_policies: { type: 'array', items: S.recordingPolicyOutput } } } },
      '404': notFound,
    }),
  }, (req, reply) => kit.answer(reply, async () => {
    const { p } = await kit.admin(req, kit.actions.read);
    const projectId = (req.query as Record<string, unknown>)['project_id'] as string | undefined;
    if (projectId !== undefined) await kit.ownProject(p, projectId);
    const mine = new Set(projectId !== undefined ? [projectId] : await kit.domainProjects(p));
    const list = (await recordings.listPolicies(projectId)).filter((x) => mine.has(x.projectId));
    return reply.type('application/json').send({ recording_policies: list.map(policyJson) });
  }));

  for (const scope of ['project', 'server'] as const) {
    const path = scope === 'project' ? `${prefix}/projects/:project_id/recording-policy` : `${prefix}/servers/:server_id/recording-policy`;
    const params = scope === 'project' ? S.projectParams : S.serverParams;
    const idOf = (req: FastifyRequest): string => (req.params as Record<string, string>)[scope === 'project' ? 'project_id' : 'server_id']!;

    app.put(path, {
      ...common, schema: { params },
      config: kit.doc(`Set (replace) the recording policy of a ${scope}: sessions recorded or not, key events too (off unless set: they hold typed passwords), retention${scope === 'project' ? ', quota' : ''}`, {
        '200': one, '404': notFound,
      }, { body: S.recordingPolicyBody }),
    }, (req, reply) => kit.answer(reply, async () => {
      const { p, ctx } = await kit.admin(req, kit.actions.write);
      const id = idOf(req);
      const b = kit.body(req, S.recordingPolicyBody)['recording_policy'] as Record<string, unknown>;
      const projectId = await target(p, scope, id);
      const policy = await recordings.setPolicy({
        scope, scopeId: id, enabled: b['enabled'] as boolean,
        ...(b['keystrokes'] !== undefined ? { keystrokes: b['keystrokes'] as boolean } : {}),
        ...(b['retention_days'] !== undefined ? { retentionDays: b['retention_days'] as number } : {}),
        ...(b['quota_bytes'] !== undefined ? { quotaBytes: b['quota_bytes'] as number | null } : {}),
        actor: ctx.actor.userId ? `user:${ctx.actor.userId}` : ctx.actor.credential,
      });
      await audit(ctx, projectId, scope, id, 'recording-policy-set', { enabled: policy.enabled, keystrokes: policy.keystrokes, retentionDays: policy.retentionDays, quotaBytes: policy.quotaBytes });
      return reply.type('application/json').send({ recording_policy: policyJson(policy) });
    }));

    app.delete(path, {
      ...common, schema: { params },
      config: kit.doc(`Remove a ${scope}'s recording policy${scope === 'server' ? ' (the server then follows its project\'s)' : ''}`, { '204': { description: 'Removed.' }, '404': notFound }),
    }, (req, reply) => kit.answer(reply, async () => {
      const { p, ctx } = await kit.admin(req, kit.actions.write);
      const id = idOf(req);
      const projectId = await target(p, scope, id);
      if (!(await recordings.removePolicy(scope, id))) throw new NotFoundError('recording policy', `${scope}:${id}`);
      await audit(ctx, projectId, scope, id, 'recording-policy-remove', {});
      return reply.code(204).send();
    }));
  }
}
