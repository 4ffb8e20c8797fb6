/**
 * What each route of the API listener says about itself (its `config.openapi`, see openapi.ts),
 * the admin API's apart (admin-schemas.ts, admin-routes.ts): summaries, tags, how the caller
 * authenticates, the body schemas the routes validate with, the answers' schemas.
 */
import type { OpenApiAnswer, RouteDoc } from './openapi.js';

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({ type: 'string', ...(description ? { description } : {}) });
const nullable = (type: string, description?: string): Schema => ({ type: [type, 'null'], ...(description ? { description } : {}) });
const obj = (properties: Record<string, Schema>, required?: readonly string[], description?: string): Schema => ({
  type: 'object', ...(required ? { required } : {}), properties, ...(description ? { description } : {}),
});
const arr = (items: Schema, description?: string): Schema => ({ type: 'array', items, ...(description ? { description } : {}) });
const ok = (description: string, schema?: Schema, extra: Partial<OpenApiAnswer> = {}): OpenApiAnswer => ({ description, ...(schema ? { schema } : {}), ...extra });
const doc = (d: RouteDoc): { openapi: RouteDoc } => ({ openapi: d });

const PROJECT_HEADER = { 'X-Project-Id': { description: 'Optional; when given it must be the URL\'s project (Common.0018 otherwise).' } };
const LINK = obj({ rel: str(), href: str(), type: str() });

// ---------------------------------------------------------------- Huawei ECS

/** Huawei's ServerDetail (the fields kept; the SDKs tolerate absent ones). */
const serverDetail = obj({
  id: str('Server id.'), name: str(), status: str('Huawei ECS status (ACTIVE, SHUTOFF, ...).'), tenant_id: str('Project id.'),
  created: { type: 'string', format: 'date-time' }, updated: { type: 'string', format: 'date-time' },
  'OS-EXT-AZ:availability_zone': str(), 'OS-EXT-STS:vm_state': str(), 'OS-EXT-STS:power_state': { type: 'integer' }, 'OS-EXT-STS:task_state': str(),
  addresses: { type: 'object' }, metadata: { type: 'object' }, tags: arr(str()), locked: { type: 'boolean' }, description: str(),
});

/** The body of remote_console (`type`/`protocol` pairs: novnc/vnc, or serial/serial, our extension). */
export const remoteConsoleBody = obj({
  remote_console: obj({
    type: { type: 'string', enum: ['novnc', 'serial'], description: 'novnc (Huawei); serial with protocol serial: the serial console\'s URL (ecs-console extension).' },
    protocol: { type: 'string', enum: ['vnc', 'serial'], description: 'vnc (Huawei); serial with type serial (ecs-console extension).' },
  }, ['type', 'protocol']),
}, ['remote_console']);

const serversList = { type: 'array', minItems: 1, maxItems: 1000, items: obj({ id: str('Server id.') }, ['id']), description: '1 to 1000 servers of the URL\'s project.' };

/** BatchStartServers / BatchStopServers: exactly one of os-start, os-stop. */
export const serverActionBody = {
  type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: false,
  description: 'Exactly one of os-start or os-stop. All or nothing: every server must be the project\'s.',
  properties: {
    'os-start': obj({ servers: serversList }, ['servers']),
    'os-stop': obj({ servers: serversList, type: { type: 'string', enum: ['SOFT', 'HARD'], description: 'Accepted; both stop the same way here.' } }, ['servers']),
  },
} as const;

export const ECS = {
  remoteConsole: doc({
    summary: 'Get a server\'s remote console URL (ShowServerRemoteConsole)', tags: ['ecs'], auth: 'credential',
    description: 'A one-time noVNC URL (`ecs:cloudServers:vnc`); the server must be ACTIVE. `{"type":"serial","protocol":"serial"}` gives the serial console page\'s URL instead (ecs-console extension).',
    body: remoteConsoleBody,
    headers: { ...PROJECT_HEADER, 'X-Language': { description: 'zh-cn: the console page speaks Chinese; English otherwise.' } },
    responses: {
      '200': ok('The console URL.', obj({ remote_console: obj({ type: str(), protocol: str(), url: { type: 'string', format: 'uri' } }) })),
      '404': ok('No such server in the project (Ecs.0114).', { $ref: '#/components/schemas/HuaweiError' }),
    },
  }),
  action: doc({
    summary: 'Start or stop servers (BatchStartServers / BatchStopServers)', tags: ['ecs'], auth: 'credential',
    description: 'The inventory\'s status is the state of record (the hypervisor is driven elsewhere); stopping revokes console URLs and closes live consoles.',
    body: serverActionBody, headers: PROJECT_HEADER,
    responses: {
      '200': ok('Done.', obj({ job_id: str('A job id (the change is already applied).') })),
      '404': ok('A server is not the project\'s (Ecs.0114); nothing changed.', { $ref: '#/components/schemas/HuaweiError' }),
    },
  }),
  list: doc({
    summary: 'List servers with details (ListServersDetails)', tags: ['ecs'], auth: 'credential', headers: PROJECT_HEADER,
    query: obj({
      limit: { type: 'integer', minimum: 1, maximum: 1000, default: 25, description: 'Page size.' },
      offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 1, description: 'Page number (0 and 1 both mean the first page).' },
      name: str('Name filter.'), status: str('Status filter (ACTIVE, SHUTOFF, ...).'),
    }),
    responses: { '200': ok('A page of servers; count is the total.', obj({ count: { type: 'integer' }, servers: arr(serverDetail) })) },
  }),
  show: doc({
    summary: 'Show a server (ShowServer)', tags: ['ecs'], auth: 'credential', headers: PROJECT_HEADER,
    responses: {
      '200': ok('The server.', obj({ server: serverDetail })),
      '404': ok('No such server in the project (Ecs.0114).', { $ref: '#/components/schemas/HuaweiError' }),
    },
  }),
  consoleOutput: doc({
    summary: 'A serial console\'s output', tags: ['console-output'], auth: 'credential', headers: PROJECT_HEADER,
    description: 'What the server\'s serial console printed (the console permission). `length`: the last N lines; `cursor`: only what came after that byte offset (the previous answer\'s `cursor`).',
    query: obj({
      length: { type: 'integer', minimum: 0, maximum: 10_000, description: 'The last N lines.' },
      cursor: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'A byte offset: the `cursor` of the previous answer.' },
    }),
    responses: {
      '200': ok('The output.', obj({
        output: str('Text (UTF-8; bytes that are not become U+FFFD).'), cursor: { type: 'integer', description: 'Byte offset just past this output.' },
        start: { type: 'integer', description: 'Byte offset where this output starts.' },
        missed: { type: 'integer', description: 'Bytes between the cursor asked for and start that are no longer kept.' },
        live: { type: 'boolean', description: 'Whether a node holds the port now (false: the output saved when it was last held).' },
      })),
      '404': ok('No such server, or it has no serial port.', { $ref: '#/components/schemas/HuaweiError' }),
    },
  }),
  screenshot: doc({
    summary: 'A server\'s console screenshot', tags: ['screenshot'], auth: 'credential', headers: PROJECT_HEADER,
    query: obj({ format: { type: 'string', enum: ['png', 'jpeg'], default: 'png' } }),
    responses: {
      '200': ok('The picture (Cache-Control: no-store).', { type: 'string', contentMediaType: 'image/png' }, {
        contentType: ['image/png', 'image/jpeg'],
        headers: { 'X-Screen-Width': { description: 'Width in pixels.', schema: { type: 'integer' } }, 'X-Screen-Height': { description: 'Height in pixels.', schema: { type: 'integer' } } },
      }),
      '404': ok('No such server in the project (Ecs.0114).', { $ref: '#/components/schemas/HuaweiError' }),
      '502': ok('The server\'s VNC console could not be reached or refused us (Ecs.0502).', { $ref: '#/components/schemas/HuaweiError' }),
    },
  }),
} as const;

// ---------------------------------------------------------------- recordings (ours)

const recording = obj({
  id: str(), session_id: str(), server_id: str(), project_id: str(), node_id: str(),
  started: { type: 'string', format: 'date-time' }, ended: { type: ['string', 'null'], format: 'date-time' }, duration_ms: nullable('integer'),
  bytes: { type: 'integer' }, keystrokes: { type: 'integer' }, expires: { type: 'string', format: 'date-time' },
});
const RECORDING_404 = ok('No such recording in the project (Ecs.0404).', { $ref: '#/components/schemas/HuaweiError' });

export const RECORDINGS = {
  list: doc({
    summary: 'List a project\'s console recordings, newest first', tags: ['recordings'], auth: 'credential', headers: PROJECT_HEADER,
    query: obj({ server_id: str(), session_id: str(), limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'Up to four digits; taken within 1-1000.' } }),
    responses: { '200': ok('The recordings.', obj({ recordings: arr(recording) })) },
  }),
  show: doc({
    summary: 'Show a recording', tags: ['recordings'], auth: 'credential', headers: PROJECT_HEADER,
    responses: { '200': ok('The recording.', obj({ recording })), '404': RECORDING_404 },
  }),
  data: doc({
    summary: 'A recording\'s records (decrypted), for the player', tags: ['recordings'], auth: 'credential', headers: PROJECT_HEADER,
    query: obj({ seekable: { type: 'string', enum: ['1'], description: 'The seekable form: the server\'s messages re-encoded so a player can start at any keyframe, with keyframes (record type 6) every so often (docs/recording.md).' } }),
    responses: {
      '200': ok('The records.', { type: 'string', contentMediaType: 'application/octet-stream' }, {
        contentType: 'application/octet-stream',
        headers: {
          'X-Recording-Integrity': { description: 'Whether the digest chain held (and up to where).' }, 'X-Recording-Chunks': { description: 'Chunks read.', schema: { type: 'integer' } },
          'X-Recording-Seekable': { description: 'With seekable=1: `keyframes=<n>`, or `no` when the recording\'s encodings cannot be re-encoded (the records are the original ones).' },
          'X-Recording-Seekable-Cache': { description: 'With seekable=1: `hit` (the seekable form kept for this finished recording), `built` (built now and kept), `uncached` (built now, not kept: the recording is not finished, or not verified).', schema: { type: 'string', enum: ['hit', 'built', 'uncached'] } },
        },
      }),
      '404': RECORDING_404,
    },
  }),
  page: (what: string) => doc({
    summary: what, tags: ['recordings'], auth: 'none', errors: 'none',
    description: 'The playback page plays a recording in the browser (same origin; it calls the recording routes with an IAM token).',
    responses: {
      '200': ok('The file.', { type: 'string' }, { contentType: what.startsWith('The playback page') ? 'text/html' : '*/*' }),
      '404': ok('No such file.', { type: 'string' }, { contentType: 'text/plain' }),
    },
  }),
} as const;

// ---------------------------------------------------------------- IAM (tokens)

const domainRef = obj({ id: str(), name: str() });
const catalog = arr(obj({
  id: str(), type: str('identity, compute or image.'), name: str(),
  endpoints: arr(obj({ id: str(), interface: str(), region: str(), region_id: str(), url: str() })),
}));
const tokenAnswer = obj({
  token: obj({
    methods: arr(str()), expires_at: str(), issued_at: str(),
    user: obj({ id: str(), name: str(), domain: domainRef, password_expires_at: str() }),
    project: obj({ id: str(), name: str(), domain: domainRef }),
    roles: arr(obj({ id: str(), name: str() })), catalog,
  }),
});
const SUBJECT = { 'X-Subject-Token': { description: 'The IAM token.' } };
const name256 = { type: 'string', minLength: 1, maxLength: 256 };

/** POST /v3/auth/tokens: password method, project scope. */
export const tokenRequestBody = obj({
  auth: obj({
    identity: obj({
      methods: { type: 'array', items: str(), contains: { const: 'password' }, description: 'Must include "password".' },
      password: obj({ user: obj({ name: name256, password: name256, domain: obj({ name: name256 }, ['name']) }, ['name', 'password', 'domain']) }, ['user']),
    }, ['methods', 'password']),
    scope: obj({ project: obj({ id: name256, name: name256 }, undefined, 'By id, or by name (the region id, e.g. cn-north-4).') }, ['project'], 'Tokens are project-scoped.'),
  }, ['identity', 'scope']),
}, ['auth']);

export const IAM_TOKENS = {
  issue: doc({
    summary: 'Get an IAM token with a password (KeystoneCreateUserTokenByPassword)', tags: ['iam'], auth: 'none', errors: 'iam',
    body: tokenRequestBody,
    responses: {
      '201': ok('The token, in X-Subject-Token; the body describes it (with the service catalog).', tokenAnswer, { headers: SUBJECT }),
      '401': ok('Wrong user, password or domain (or throttled logins).', { $ref: '#/components/schemas/KeystoneError' }),
    },
  }),
  validate: doc({
    summary: 'Validate an IAM token (KeystoneValidateToken)', tags: ['iam'], auth: 'credential', errors: 'iam',
    description: 'The token\'s own user, or an administrator of its domain.',
    headers: { 'X-Subject-Token': { description: 'The token to validate.', required: true } },
    responses: { '200': ok('The token is valid.', tokenAnswer, { headers: SUBJECT }), '404': ok('Not a valid token (IAM.0004).', { $ref: '#/components/schemas/IamError' }) },
  }),
  revoke: doc({
    summary: 'Revoke an IAM token', tags: ['iam'], auth: 'credential', errors: 'iam',
    description: 'The token\'s own user, or an administrator of its domain.',
    headers: { 'X-Subject-Token': { description: 'The token to revoke.', required: true } },
    responses: { '204': ok('Revoked.'), '404': ok('Not a valid token (IAM.0004).', { $ref: '#/components/schemas/IamError' }) },
  }),
} as const;

// ---------------------------------------------------------------- IAM (lifecycle)

const s255 = { type: ['string', 'null'], maxLength: 255 };
const permanentKey = obj({ user_id: str(), access: str('The AK.'), status: { type: 'string', enum: ['active', 'inactive'] }, create_time: str(), description: str() });
const links = obj({ self: str(), previous: nullable('string'), next: nullable('string') });
const user = obj({
  id: str(), name: str(), domain_id: str(), enabled: { type: 'boolean' }, description: str(), pwd_status: { type: 'boolean' },
  password_expires_at: nullable('string'), access_mode: str(), links: obj({ self: str() }),
});
const project = obj({ id: str(), name: str(), domain_id: str(), parent_id: str(), is_domain: { type: 'boolean' }, enabled: { type: 'boolean' }, description: str(), links: obj({ self: str() }) });
const KEYSTONE_404 = ok('Not found (Keystone body).', { $ref: '#/components/schemas/KeystoneError' });
const KEYSTONE_409 = ok('Conflict (Keystone body).', { $ref: '#/components/schemas/KeystoneError' });
const lifecycle = (d: Omit<RouteDoc, 'tags' | 'auth' | 'errors'>): { openapi: RouteDoc } => doc({ ...d, tags: ['iam'], auth: 'credential', errors: 'iam' });

export const credentialCreateBody = obj({ credential: obj({ user_id: { type: 'string', minLength: 1, maxLength: 64 }, description: s255 }, ['user_id']) }, ['credential']);
export const credentialUpdateBody = obj({
  credential: obj({ status: { type: ['string', 'null'], enum: ['active', 'inactive', null] }, description: s255 }, undefined, 'status or description (at least one).'),
}, ['credential']);
export const securityTokenBody = obj({
  auth: obj({
    identity: obj({
      methods: { type: 'array', minItems: 1, maxItems: 1, items: { const: 'token' }, description: '["token"]: temporary credentials by token.' },
      token: {
        ...obj({
          id: { type: ['string', 'null'], maxLength: 1024, description: 'The IAM token; default the caller\'s own X-Auth-Token (required when the call is signed with an access key).' },
          duration_seconds: { type: ['number', 'null'], default: 900, description: 'Seconds (900 to 86400).' },
        }),
        type: ['object', 'null'],
      },
    }, ['methods']),
  }, ['identity']),
}, ['auth']);
export const userCreateBody = obj({
  user: obj({ name: { type: 'string', minLength: 1, maxLength: 64 }, domain_id: { type: ['string', 'null'], maxLength: 64 }, password: { type: ['string', 'null'], maxLength: 128 }, enabled: nullable('boolean'), description: s255 }, ['name']),
}, ['user']);
export const userUpdateBody = obj({
  user: obj({ enabled: nullable('boolean'), description: s255, name: { type: ['string', 'null'], maxLength: 64 }, password: { type: ['string', 'null'], maxLength: 128 } }, undefined, 'enabled, description, name or password (at least one).'),
}, ['user']);
export const passwordChangeBody = obj({
  user: obj({ original_password: { type: 'string', minLength: 1, maxLength: 128 }, password: { type: 'string', minLength: 1, maxLength: 128 } }, ['original_password', 'password']),
}, ['user']);
export const projectCreateBody = obj({
  project: obj({ name: { type: 'string', minLength: 1, maxLength: 64 }, domain_id: { type: ['string', 'null'], maxLength: 64 }, description: s255 }, ['name']),
}, ['project']);
export const projectUpdateBody = obj({
  project: obj({ name: { type: ['string', 'null'], maxLength: 64 }, description: s255 }, undefined, 'name or description (at least one).'),
}, ['project']);

export const IAM = {
  createKey: lifecycle({
    summary: 'Create a permanent access key (CreatePermanentAccessKey)', body: credentialCreateBody,
    responses: { '201': ok('The key, with its secret (shown this once).', obj({ credential: { ...permanentKey, properties: { ...(permanentKey['properties'] as Schema), secret: str('The SK.') } } })), '404': KEYSTONE_404 },
  }),
  listKeys: lifecycle({
    summary: 'List permanent access keys (ListPermanentAccessKeys)', query: obj({ user_id: str() }),
    responses: { '200': ok('The keys (never their secrets).', obj({ credentials: arr(permanentKey) })) },
  }),
  showKey: lifecycle({
    summary: 'Show a permanent access key (ShowPermanentAccessKey)',
    responses: { '200': ok('The key (last_use_time is not recorded: null).', obj({ credential: { ...permanentKey, properties: { ...(permanentKey['properties'] as Schema), last_use_time: { type: 'null' } } } })), '404': KEYSTONE_404 },
  }),
  updateKey: lifecycle({
    summary: 'Enable, disable or describe a permanent access key (UpdatePermanentAccessKey)', body: credentialUpdateBody,
    responses: { '200': ok('The key.', obj({ credential: permanentKey })), '404': KEYSTONE_404 },
  }),
  deleteKey: lifecycle({ summary: 'Delete a permanent access key (DeletePermanentAccessKey)', responses: { '204': ok('Deleted; its live consoles close.'), '404': KEYSTONE_404 } }),
  securityToken: lifecycle({
    summary: 'Get temporary credentials by token (CreateTemporaryAccessKeyByToken)', body: securityTokenBody,
    responses: { '201': ok('The temporary AK/SK and security token.', obj({ credential: obj({ access: str(), secret: str(), securitytoken: str(), expires_at: { type: 'string', format: 'date-time' } }) })) },
  }),
  createUser: lifecycle({ summary: 'Create a user (CreateUser)', body: userCreateBody, responses: { '201': ok('The user.', obj({ user })), '409': KEYSTONE_409 } }),
  listUsers: lifecycle({
    summary: 'List users (KeystoneListUsers)', query: obj({ domain_id: str(), enabled: { type: 'string', enum: ['true', 'false'] }, name: str() }),
    responses: { '200': ok('The users.', obj({ users: arr(user), links })) },
  }),
  showUser: lifecycle({ summary: 'Show a user (KeystoneShowUser)', responses: { '200': ok('The user.', obj({ user })), '404': KEYSTONE_404 } }),
  updateUser: lifecycle({ summary: 'Change a user (UpdateUser): enable, disable, rename, describe, set its password', body: userUpdateBody, responses: { '200': ok('The user.', obj({ user })), '404': KEYSTONE_404 } }),
  changePassword: lifecycle({ summary: 'Change one\'s own password (KeystoneUpdateUserPassword)', body: passwordChangeBody, responses: { '204': ok('Changed.'), '404': KEYSTONE_404 } }),
  deleteUser: lifecycle({ summary: 'Delete a user (KeystoneDeleteUser)', responses: { '204': ok('Deleted; its keys and tokens stop working, its consoles close.'), '404': KEYSTONE_404 } }),
  createProject: lifecycle({ summary: 'Create a project (CreateProject)', body: projectCreateBody, responses: { '201': ok('The project.', obj({ project })), '409': KEYSTONE_409 } }),
  listProjects: lifecycle({
    summary: 'List projects (KeystoneListProjects)', query: obj({ domain_id: str(), name: str() }),
    responses: { '200': ok('The projects.', obj({ projects: arr(project), links })) },
  }),
  showProject: lifecycle({ summary: 'Show a project (KeystoneShowProject)', responses: { '200': ok('The project.', obj({ project })), '404': KEYSTONE_404 } }),
  updateProject: lifecycle({ summary: 'Rename or describe a project (UpdateProject)', body: projectUpdateBody, responses: { '200': ok('The project.', obj({ project })), '404': KEYSTONE_404 } }),
  authProjects: lifecycle({ summary: 'The projects the caller may reach (KeystoneListAuthProjects)', responses: { '200': ok('The projects.', obj({ projects: arr(project), links: obj({ self: str() }) })) } }),
  authDomains: lifecycle({
    summary: 'The caller\'s domain (KeystoneListAuthDomains)',
    responses: { '200': ok('The domain.', obj({ domains: arr(obj({ id: str(), name: str(), enabled: { type: 'boolean' }, description: str(), links: obj({ self: str() }) })), links: obj({ self: str() }) })) },
  }),
} as const;

// ---------------------------------------------------------------- discovery, image service

const versionDoc = obj({
  id: str(), status: str(), version: str('The newest microversion.'), min_version: str(), updated: str(),
  links: arr(LINK), 'media-types': arr(obj({ base: str(), type: str() })),
});
const imageVersions = obj({ versions: arr(obj({ id: str(), status: str(), links: arr(LINK) })) });

export const DISCOVERY = {
  root: doc({ summary: 'Compute API versions (Nova discovery)', tags: ['nova'], auth: 'none', responses: { '200': ok('The versions.', obj({ versions: arr(versionDoc) })) } }),
  identity: doc({
    summary: 'Identity API version document (Keystone v3 discovery)', tags: ['iam'], auth: 'none',
    responses: { '200': ok('The version.', obj({ version: obj({ id: str(), status: str(), updated: str(), links: arr(LINK), 'media-types': arr(obj({ base: str(), type: str() })) }) })) },
  }),
  imageVersions: doc({ summary: 'Image API versions (Glance discovery)', tags: ['image'], auth: 'none', responses: { '200': ok('The versions.', imageVersions) } }),
  images: doc({
    summary: 'List images (always empty: servers show "booted from volume")', tags: ['image'], auth: 'credential',
    responses: { '200': ok('No images.', obj({ images: { type: 'array', maxItems: 0 }, schema: str(), first: str() })) },
  }),
} as const;

// ---------------------------------------------------------------- Nova

const NOVA_HEADERS = {
  'OpenStack-API-Version': { description: '`compute 2.x` (2.1-2.60, or `latest`); echoed in the answer.' },
  'X-OpenStack-Nova-API-Version': { description: 'Legacy form: `2.x`; echoed in the answer.' },
};
const NOVA_404 = ok('No such server in the project (itemNotFound).', { $ref: '#/components/schemas/NovaError' });
const novaServer = obj({
  id: str(), name: str(), status: str(), tenant_id: str(), user_id: str(), created: str(), updated: str(), hostId: str(),
  addresses: { type: 'object' }, image: str('Empty: booted from volume.'), flavor: { type: 'object', description: '{id, links} before 2.47; the embedded flavor from 2.47.' },
  metadata: { type: 'object' }, links: arr(LINK), 'OS-EXT-AZ:availability_zone': str(), 'OS-EXT-STS:power_state': { type: 'integer' },
  'OS-EXT-STS:task_state': { type: 'null' }, 'OS-EXT-STS:vm_state': str(), locked: { type: 'boolean', description: '2.9+.' },
  description: { type: 'null', description: '2.19+.' }, tags: { type: 'array', description: '2.26+.' },
});
const serversQuery = obj({ limit: { type: 'integer', minimum: 0, maximum: 1000, default: 1000, description: 'Page size; a larger one is taken as 1000.' }, marker: str('The last server id of the previous page.'), name: str(), status: str() });
const serversLinks = arr(LINK, 'The next page (when there may be more).');
const nova = (d: Omit<RouteDoc, 'tags' | 'auth' | 'errors' | 'headers'> & { auth?: RouteDoc['auth'] }): { openapi: RouteDoc } =>
  doc({ auth: 'credential', ...d, tags: ['nova'], errors: 'nova', headers: NOVA_HEADERS });

/** The action body (one action). */
export const novaActionBody = {
  type: 'object', minProperties: 1, maxProperties: 1, description: 'One action.',
  properties: {
    'os-getVNCConsole': obj({ type: str('novnc (xvpvnc is Nova\'s too, and not available).') }, ['type']),
    'os-getSerialConsole': obj({ type: str('serial.') }, ['type']),
    'os-getConsoleOutput': { ...obj({ length: { type: ['integer', 'string', 'null'], description: 'The last N lines; -1 or absent: all.' } }), type: ['object', 'null'] },
  },
} as const;

export const novaRemoteConsoleBody = obj({
  remote_console: obj({
    protocol: { type: 'string', enum: ['vnc', 'spice', 'rdp', 'serial', 'mks'], description: 'vnc and serial are available.' },
    type: { type: 'string', description: 'novnc with vnc; serial with serial.' },
  }, ['protocol', 'type']),
}, ['remote_console']);

export const NOVA = {
  version: nova({ summary: 'The v2.1 version document', auth: 'none', responses: { '200': ok('The version.', obj({ version: versionDoc })) } }),
  projectVersion: nova({ summary: 'The v2.1 version document (keystoneauth asks the project\'s endpoint)', auth: 'none', responses: { '200': ok('The version.', obj({ version: versionDoc })) } }),
  servers: nova({ summary: 'List servers', query: serversQuery, responses: { '200': ok('A page of servers.', obj({ servers: arr(obj({ id: str(), name: str(), links: arr(LINK) })), servers_links: serversLinks })) } }),
  serversDetail: nova({ summary: 'List servers with details', query: serversQuery, responses: { '200': ok('A page of servers.', obj({ servers: arr(novaServer), servers_links: serversLinks })) } }),
  server: nova({ summary: 'Show a server', responses: { '200': ok('The server.', obj({ server: novaServer })), '404': NOVA_404 } }),
  action: nova({
    summary: 'Server action: os-getVNCConsole, os-getSerialConsole, os-getConsoleOutput', body: novaActionBody,
    responses: {
      '200': ok('The console (type, url) or the output.', { anyOf: [obj({ console: obj({ type: str(), url: str() }) }), obj({ output: str() })] }),
      '404': NOVA_404, '409': ok('The server is not ACTIVE, or has no console output.', { $ref: '#/components/schemas/NovaError' }),
    },
  }),
  remoteConsoles: nova({
    summary: 'Create a remote console (2.6+): vnc/novnc or serial/serial', body: novaRemoteConsoleBody,
    responses: {
      '200': ok('The console URL (serial: the WebSocket URL).', obj({ remote_console: obj({ protocol: str(), type: str(), url: str() }) })),
      '404': ok('No such server, or microversion below 2.6.', { $ref: '#/components/schemas/NovaError' }),
      '409': ok('The server is not ACTIVE.', { $ref: '#/components/schemas/NovaError' }),
    },
  }),
  consoleAuthToken: nova({
    summary: 'Show a console auth token (2.31+; domain administrators only)', auth: 'admin',
    responses: {
      '200': ok('Where the token\'s console is.', obj({ console: obj({ instance_uuid: str(), host: nullable('string'), port: nullable('integer'), internal_access_path: { type: 'null' } }) })),
      '404': ok('The token is invalid or has expired.', { $ref: '#/components/schemas/NovaError' }),
    },
  }),
} as const;

// ---------------------------------------------------------------- operations (ours)

export const OPERATIONS = {
  metrics: doc({
    summary: 'Prometheus metrics', tags: ['operations'], auth: 'none', errors: 'none',
    responses: { '200': ok('Metrics in the Prometheus text format.', { type: 'string' }, { contentType: 'text/plain' }) },
  }),
  healthz: doc({
    summary: 'Liveness probe', tags: ['operations'], auth: 'none', errors: 'none',
    responses: { '200': ok('The process answers.', obj({ status: { const: 'ok' } })) },
  }),
  readyz: doc({
    summary: 'Readiness probe: the store can be written now, and the process is not stopping', tags: ['operations'], auth: 'none', errors: 'none',
    responses: {
      '200': ok('Ready.', obj({ status: { const: 'ready' } })),
      '503': ok('Not ready: draining (stopping), or a check failed (named).', obj({ status: { type: 'string', enum: ['draining', 'unavailable'] }, check: str() })),
    },
  }),
  openapi: doc({
    summary: 'This document (OpenAPI 3.1)', tags: ['operations'], auth: 'none', errors: 'none',
    responses: { '200': ok('The OpenAPI document of the API listener (the same as docs/openapi.json).', { type: 'object' }) },
  }),
} as const;
