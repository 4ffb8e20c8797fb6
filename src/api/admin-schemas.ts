/**
 * JSON schemas of the admin API: the server validates requests with them (path and query by
 * fastify, bodies after authentication) and /openapi.json is generated from them.
 */
import { AUDIT_KINDS, AUDIT_OUTCOMES } from '../audit/types.js';

const uuid = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', description: 'Server id (lower-case UUID).' } as const;
const projectId = { type: 'string', minLength: 1, maxLength: 64, description: 'Project id (32 hex digits).' } as const;
const az = { type: 'string', minLength: 1, maxLength: 64, description: 'Availability zone.' } as const;
const status = {
  type: 'string',
  enum: ['ACTIVE', 'BUILD', 'SHUTOFF', 'REBOOT', 'HARD_REBOOT', 'REBUILD', 'MIGRATING', 'RESIZE', 'VERIFY_RESIZE', 'REVERT_RESIZE', 'ERROR', 'DELETED', 'SHELVED', 'SHELVED_OFFLOADED', 'UNKNOWN'],
  description: 'Huawei ECS status; only ACTIVE servers can be logged in to.',
} as const;

/** A console target as given (create, sync: whole; update: only what changes). */
export const consoleInputSchema = {
  type: 'object',
  description: 'Where the proxy reaches the console. static: host, port, optional auth/password; qemu-qmp: host, port, qmp; libvirt: uri, domain, optional host.',
  properties: {
    kind: { type: 'string', enum: ['static', 'qemu-qmp', 'libvirt'], description: 'Default static.' },
    host: { type: ['string', 'null'], maxLength: 253 },
    port: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
    auth: { type: ['string', 'null'], enum: ['none', 'vnc-password', null], description: 'static only.' },
    password: { type: ['string', 'null'], maxLength: 8, description: 'static with vnc-password: 1-8 bytes. Write only: never returned.' },
    qmp: { type: ['string', 'null'], maxLength: 200, description: 'qemu-qmp: unix:/path or tcp:host:port.' },
    uri: { type: ['string', 'null'], maxLength: 1000, description: 'libvirt: connection URI, e.g. qemu:///system.' },
    domain: { type: ['string', 'null'], maxLength: 255, description: 'libvirt: domain name or UUID.' },
    tls: { type: ['boolean', 'null'], description: 'Require TLS (VeNCrypt X.509) to the VNC server.' },
    tls_name: { type: ['string', 'null'], maxLength: 253, description: 'Name the VNC server certificate carries (default the host).' },
    serial: { type: ['string', 'null'], maxLength: 200, description: 'The serial port: unix:/path or tcp:host:port.' },
  },
} as const;

const consoleOutput = {
  type: 'object',
  properties: {
    kind: { type: 'string' }, host: { type: ['string', 'null'] }, port: { type: ['integer', 'null'] }, auth: { type: 'string' },
    password_set: { type: 'boolean' }, qmp: { type: ['string', 'null'] }, uri: { type: ['string', 'null'] }, domain: { type: ['string', 'null'] },
    tls: { type: 'boolean' }, tls_name: { type: ['string', 'null'] }, serial: { type: ['string', 'null'] },
  },
} as const;

export const serverOutputSchema = {
  type: 'object',
  properties: {
    id: uuid, name: { type: 'string' }, status: { type: 'string' }, project_id: { type: 'string' }, availability_zone: { type: 'string' },
    created: { type: 'string', format: 'date-time' }, updated: { type: 'string', format: 'date-time' }, console_revision: { type: 'integer' },
    console: consoleOutput,
  },
} as const;

export const createServerBody = {
  type: 'object',
  required: ['server'],
  properties: {
    server: {
      type: 'object',
      required: ['project_id', 'name', 'console'],
      properties: { id: uuid, project_id: projectId, name: { type: 'string', minLength: 1, maxLength: 255 }, status, availability_zone: az, console: consoleInputSchema },
    },
  },
} as const;

export const updateServerBody = {
  type: 'object',
  required: ['server'],
  properties: {
    server: {
      type: 'object',
      minProperties: 1,
      description: 'Only what is given changes; console fields one by one. A new password alone leaves live sessions alone; a new place for the target, or leaving ACTIVE, ends them.',
      properties: { name: { type: 'string', minLength: 1, maxLength: 255 }, status, availability_zone: az, console: consoleInputSchema },
    },
  },
} as const;

const syncItem = {
  type: 'object',
  required: ['id', 'name', 'console'],
  properties: { id: uuid, name: { type: 'string', minLength: 1, maxLength: 255 }, status, availability_zone: az, console: consoleInputSchema },
} as const;

export const syncBodySchema = {
  type: 'object',
  required: ['servers'],
  properties: {
    servers: { type: 'array', maxItems: 100000, items: syncItem, description: 'The complete list of the scope\'s servers: absent ones are deleted.' },
  },
} as const;

export const syncResultSchema = {
  type: 'object',
  properties: {
    sync: {
      type: 'object',
      properties: {
        dry_run: { type: 'boolean' }, project_id: { type: 'string' }, availability_zone: { type: ['string', 'null'] },
        created: { type: 'array', items: { type: 'string' } },
        updated: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, changed: { type: 'array', items: { type: 'string' } } } } },
        deleted: { type: 'array', items: { type: 'string' } },
        revoked: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, reason: { type: 'string' } } } },
        unchanged: { type: 'integer' },
      },
    },
  },
} as const;

export const serverParams = { type: 'object', required: ['server_id'], properties: { server_id: uuid } } as const;
export const projectParams = { type: 'object', required: ['project_id'], properties: { project_id: projectId } } as const;
export const projectAzParams = { type: 'object', required: ['project_id', 'availability_zone'], properties: { project_id: projectId, availability_zone: az } } as const;
export const sessionParams = { type: 'object', required: ['session_id'], properties: { session_id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

const limit = (max: number, dflt: number) => ({ type: 'integer', minimum: 1, maximum: max, default: dflt, description: `Page size (1-${max}, default ${dflt}).` });

export const listServersQuery = {
  type: 'object',
  properties: {
    project_id: projectId, status, name: { type: 'string', maxLength: 255 }, availability_zone: az,
    marker: { ...uuid, description: 'The last server id of the previous page.' }, limit: limit(1000, 100),
  },
} as const;

export const syncQuery = { type: 'object', properties: { dry_run: { type: 'boolean', default: false, description: 'Answer the plan; change nothing.' } } } as const;

export const listSessionsQuery = { type: 'object', properties: { server_id: uuid, project_id: projectId } } as const;

export const killQuery = {
  type: 'object',
  properties: { reason: { type: 'string', minLength: 1, maxLength: 80, description: 'Shown on the user\'s console page; kept in the audit trail.' } },
} as const;

const auditFilters = {
  server_id: { type: 'string', maxLength: 256 }, project_id: { type: 'string', maxLength: 256 }, user_id: { type: 'string', maxLength: 256 },
  access_key: { type: 'string', maxLength: 256 }, client_address: { type: 'string', maxLength: 256 },
  kind: { type: 'string', enum: AUDIT_KINDS, description: 'Record kind: console URLs and sessions, identity changes, operator actions.' },
  outcome: { type: 'string', enum: AUDIT_OUTCOMES },
  from: { type: 'string', maxLength: 64, description: 'ISO 8601 time: records at or after it.' },
  to: { type: 'string', maxLength: 64, description: 'ISO 8601 time: records before it.' },
} as const;

export const auditQuery = {
  type: 'object',
  properties: { ...auditFilters, marker: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'The last record id of the previous page.' }, limit: limit(1000, 100) },
} as const;

export const auditExportQuery = {
  type: 'object',
  properties: { ...auditFilters, format: { type: 'string', enum: ['csv', 'json'], default: 'csv', description: 'csv (a header row; opens in a spreadsheet) or json (one object a line).' } },
} as const;

const auditEvent = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, at: { type: 'string', format: 'date-time' }, kind: { type: 'string' }, outcome: { type: ['string', 'null'] },
    node_id: { type: 'string' }, project_id: { type: ['string', 'null'] }, server_id: { type: ['string', 'null'] }, session_id: { type: ['string', 'null'] },
    token_ref: { type: ['string', 'null'] }, actor_user_id: { type: ['string', 'null'] }, actor_credential: { type: ['string', 'null'] },
    client_address: { type: ['string', 'null'] }, request_id: { type: ['string', 'null'] }, target: { type: ['string', 'null'] }, detail: { type: 'object' },
  },
} as const;

export const auditPageSchema = { type: 'object', properties: { events: { type: 'array', items: auditEvent }, next_marker: { type: ['string', 'null'] } } } as const;

export const sessionsSchema = {
  type: 'object',
  properties: {
    sessions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' }, server_id: { type: 'string' }, server_name: { type: ['string', 'null'] }, project_id: { type: 'string' },
          user_id: { type: ['string', 'null'] }, credential: { type: ['string', 'null'] }, client_address: { type: 'string' }, node_id: { type: 'string' },
          started_at: { type: 'string', format: 'date-time' }, bytes_to_client: { type: 'integer' }, bytes_to_backend: { type: 'integer' },
        },
      },
    },
  },
} as const;

export const killResultSchema = {
  type: 'object',
  properties: { server_id: { type: 'string' }, session_id: { type: ['string', 'null'] }, listed: { type: 'integer' } },
} as const;

export const listPoliciesQuery = { type: 'object', properties: { project_id: projectId } } as const;

/** A recording policy as set (PUT replaces the whole policy; what is left out takes its default). */
export const recordingPolicyBody = {
  type: 'object',
  required: ['recording_policy'],
  additionalProperties: false,
  properties: {
    recording_policy: {
      type: 'object',
      required: ['enabled'],
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean', description: 'Record the sessions (false: not recorded, even when the project is).' },
        keystrokes: { type: 'boolean', default: false, description: 'Record key events too (they hold typed passwords). Default false.' },
        retention_days: { type: 'integer', minimum: 1, maximum: 3650, description: 'Recordings are deleted this many days after they started (default 30).' },
        quota_bytes: { type: ['integer', 'null'], minimum: 1, description: 'Project policies only: most bytes of recordings kept; the oldest go first.' },
      },
    },
  },
} as const;

export const recordingPolicyOutput = {
  type: 'object',
  properties: {
    scope: { type: 'string', enum: ['project', 'server'] }, scope_id: { type: 'string' }, project_id: { type: 'string' }, enabled: { type: 'boolean' },
    keystrokes: { type: 'boolean' }, retention_days: { type: 'integer' }, quota_bytes: { type: ['integer', 'null'] }, updated: { type: 'string' },
    updated_by: { type: ['string', 'null'] },
  },
} as const;
