/**
 * The OpenAPI 3.1 document: served at GET /openapi.json, accepted by a standard validator
 * (@seriousme/openapi-schema-validator, against the OpenAPI Initiative's 3.1 schema), the same as
 * the committed docs/openapi.json, and complete: a walk of the API listener's route table (every
 * method and URL fastify's onRoute hook saw) finds each route in the document with its summary,
 * tags, parameters, body and answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { bodyValidator, isCompiled } from '../../../src/api/body.js';
import { openApiDocument, openApiPath, recordRoutes, registeredRoutes, type RegisteredRoute } from '../../../src/api/openapi.js';
import { http, signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

type Json = Record<string, any>;

let stack: Stack;
let served: Json;
let s: Seed;

before(async () => {
  stack = await startStack();
  s = await seed(stack.app);
  const r = await http('GET', `${stack.apiUrl}/openapi.json`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  served = r.json;
});
after(async () => {
  await stack.stop();
});

/** What is wrong with the document of each route (empty: nothing). */
function walk(routes: readonly RegisteredRoute[], doc: Json): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const r of routes) {
    const where = `${r.method} ${r.url}`;
    const path = openApiPath(r.url);
    seen.add(`${r.method.toLowerCase()} ${path}`);
    if (!r.doc) {
      problems.push(`${where}: no config.openapi`);
      continue;
    }
    if (!r.doc.summary.trim()) problems.push(`${where}: no summary`);
    if (r.doc.tags.length === 0) problems.push(`${where}: no tag`);
    const op = doc['paths']?.[path]?.[r.method.toLowerCase()] as Json | undefined;
    if (!op) {
      problems.push(`${where}: not in the document`);
      continue;
    }
    if (!op['description']) problems.push(`${where}: no description`);
    const answers = Object.entries(op['responses'] ?? {}) as Array<[string, Json]>;
    if (!answers.some(([code]) => /^[23]\d\d$/.test(code))) problems.push(`${where}: no success answer`);
    for (const [code, a] of answers) {
      if (!a['description']) problems.push(`${where}: answer ${code} has no description`);
      // Every answer with a body says what the body is (HEAD answers have none).
      if (r.method !== 'HEAD' && code !== '204' && !Object.values(a['content'] ?? {}).some((c) => (c as Json)['schema'])) problems.push(`${where}: answer ${code} has no schema`);
    }
    for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
      if (!(op['parameters'] ?? []).some((p: Json) => p['in'] === 'path' && p['name'] === name && p['schema'])) problems.push(`${where}: path parameter ${name} not described`);
    }
    if (['POST', 'PUT', 'PATCH'].includes(r.method) && !op['requestBody']?.content?.['application/json']?.schema) problems.push(`${where}: no body schema`);
    const security = op['security'] as Json[] | undefined;
    if (r.doc.auth === 'none' ? security?.length !== 0 : !security?.some((s) => 'akSkSignature' in s) || !security.some((s) => 'iamToken' in s)) {
      problems.push(`${where}: security does not say how to authenticate (${r.doc.auth})`);
    }
  }
  // Nothing in the document that the listener does not serve.
  for (const [path, ops] of Object.entries(doc['paths'] ?? {})) {
    for (const method of Object.keys(ops as Json)) if (!seen.has(`${method} ${path}`)) problems.push(`${method.toUpperCase()} ${path}: documented, not registered`);
  }
  return problems;
}

test('GET /openapi.json is an OpenAPI 3.1 document the standard validator accepts', async () => {
  const validator = new Validator();
  const result = await validator.validate(served);
  assert.equal(validator.version, '3.1');
  assert.deepEqual(result, { valid: true }, JSON.stringify(result.errors, null, 1)?.slice(0, 2000));
  assert.equal(served['openapi'], '3.1.0');
  // The validator is not a rubber stamp: a document with a broken answer is refused.
  const broken = structuredClone(served);
  broken['paths']['/healthz']['get']['responses']['200'] = { content: {} };
  assert.equal((await new Validator().validate(broken)).valid, false);
});

test('the committed docs/openapi.json is the document served (npm run openapi writes it)', () => {
  const committed = JSON.parse(readFileSync(`${ROOT}docs/openapi.json`, 'utf8')) as Json;
  assert.deepEqual(served, committed, 'docs/openapi.json differs from GET /openapi.json: run `npm run openapi` and commit docs/openapi.json');
});

test('every route registered on the API listener is in the document, with summary, tags, parameters, body schema and answers', () => {
  const routes = stack.app.apiRoutes();
  // The whole surface is there (a walk of nothing proves nothing).
  const have = new Set(routes.map((r) => `${r.method} ${r.url}`));
  for (const must of [
    'POST /v1/:project_id/cloudservers/:server_id/remote_console', 'POST /v1/:project_id/cloudservers/action', 'GET /v1/:project_id/cloudservers/detail',
    'GET /v1/:project_id/cloudservers/:server_id/console_output', 'GET /v1/:project_id/cloudservers/:server_id/screenshot', 'GET /v1/:project_id/recordings',
    'POST /v3/auth/tokens', 'POST /v3.0/OS-CREDENTIAL/credentials', 'PUT /v3.0/OS-USER/users/:user_id', 'PATCH /v3/projects/:project_id',
    'GET /', 'GET /v2.1', 'GET /v2.1/', 'GET /v3', 'POST /v2.1/:project_id/servers/:server_id/action', 'GET /image/v2/images',
    'PUT /admin/v1/projects/:project_id/servers', 'GET /admin/v1/audit/export', 'GET /metrics', 'GET /healthz', 'GET /readyz', 'GET /openapi.json',
    'GET /playback.html', 'HEAD /v1/:project_id/cloudservers/detail',
  ]) assert.ok(have.has(must), `${must} is registered`);
  assert.ok(routes.length >= 90, `${routes.length} routes`);
  assert.deepEqual(walk(routes, served), []);
  // Every declared body schema was compiled as its route was registered (no call compiles one),
  // and compiles in the strict checker the routes use (not only the ones a test sends).
  for (const r of routes) if (r.doc?.body) assert.ok(isCompiled(r.doc.body), `${r.method} ${r.url} compiled at registration`);
  for (const r of routes) if (r.doc?.body) assert.equal(typeof bodyValidator(r.doc.body), 'function', `${r.method} ${r.url}`);
});

test('the walk refuses a route without config.openapi, one the document lacks, and a documented route that is not served', async () => {
  const app = Fastify();
  const routes = recordRoutes(app);
  app.get('/bare', async () => 'x');
  app.post('/no-body', { config: { openapi: { summary: 'A post', tags: ['ecs'], auth: 'credential', responses: { '200': { description: 'Done.', schema: { type: 'object' } } } } } }, async () => 'x');
  await app.ready();
  assert.equal(registeredRoutes(app), routes);
  const doc = openApiDocument(routes, { version: '0' }) as Json;
  const problems = walk(routes, doc);
  assert.ok(problems.includes('GET /bare: no config.openapi'), problems.join('\n'));
  assert.ok(problems.includes('POST /no-body: no body schema'), problems.join('\n'));
  // The generator lists the undocumented route too (the document shows the gap).
  assert.equal(doc['paths']['/bare']['get']['summary'], 'Undocumented route');
  const lacking = structuredClone(doc);
  delete lacking['paths']['/no-body'];
  lacking['paths']['/gone'] = { get: doc['paths']['/bare']['get'] };
  const more = walk(routes, lacking);
  assert.ok(more.includes('POST /no-body: not in the document'), more.join('\n'));
  assert.ok(more.includes('GET /gone: documented, not registered'), more.join('\n'));
  await app.close();
});

test('our extensions say they are ours; Huawei\'s calls do not', () => {
  const op = (path: string, method: string): Json => served['paths'][path][method];
  for (const [path, method] of [
    ['/v1/{project_id}/cloudservers/{server_id}/screenshot', 'get'], ['/v1/{project_id}/recordings', 'get'], ['/admin/v1/servers', 'post'],
    ['/v1/{project_id}/cloudservers/{server_id}/console_output', 'get'], ['/healthz', 'get'],
  ]) {
    assert.equal(op(path!, method!)['x-ecs-console-extension'], true, path);
    assert.match(op(path!, method!)['description'], /ecs-console extension, not a Huawei Cloud API/, path);
  }
  for (const [path, method] of [['/v1/{project_id}/cloudservers/{server_id}/remote_console', 'post'], ['/v3/auth/tokens', 'post'], ['/v3.0/OS-CREDENTIAL/credentials', 'post']]) {
    assert.equal(op(path!, method!)['x-ecs-console-extension'], undefined, path);
  }
  const tags = new Map((served['tags'] as Json[]).map((t) => [t['name'], t['description']]));
  for (const t of ['admin', 'screenshot', 'recordings']) assert.match(tags.get(t), /ecs-console extension, not a Huawei Cloud API/, t);
});

test('security schemes: the AK/SK signature (SDK-HMAC-SHA256 in Authorization) and the IAM token (X-Auth-Token)', () => {
  const s = served['components']['securitySchemes'];
  assert.deepEqual([s.akSkSignature.type, s.akSkSignature.in, s.akSkSignature.name], ['apiKey', 'header', 'Authorization']);
  assert.match(s.akSkSignature.description, /SDK-HMAC-SHA256 Access=/);
  assert.match(s.akSkSignature.description, /X-Sdk-Date/);
  assert.deepEqual([s.iamToken.type, s.iamToken.in, s.iamToken.name], ['apiKey', 'header', 'X-Auth-Token']);
  // Error bodies: each door's.
  const remote = served['paths']['/v1/{project_id}/cloudservers/{server_id}/remote_console']['post']['responses'];
  assert.equal(remote['401'].content['application/json'].schema.$ref, '#/components/schemas/HuaweiGatewayError');
  const nova = served['paths']['/v2.1/{project_id}/servers']['get']['responses'];
  assert.equal(nova['400'].content['application/json'].schema.$ref, '#/components/schemas/NovaError');
  const admin = served['paths']['/admin/v1/servers']['get']['responses'];
  assert.equal(admin['401'].content['application/json'].schema.$ref, '#/components/schemas/KeystoneError');
});

test('a request body is held to the schema the document shows (one schema for both)', async () => {
  const body = (path: string, method: string): Json => served['paths'][path][method]['requestBody']['content']['application/json']['schema'];
  // Huawei ECS: the enum the document lists is the one the refusal names.
  const rc = body('/v1/{project_id}/cloudservers/{server_id}/remote_console', 'post');
  const types = rc['properties']['remote_console']['properties']['type']['enum'] as string[];
  const r = await signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`,
    JSON.stringify({ remote_console: { type: 'spice', protocol: 'vnc' } }), { ak: s.ak, sk: s.sk, projectId: s.projectId });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'Ecs.0005');
  for (const t of types) assert.ok(r.json.error.message.includes(t), `${r.json.error.message} names ${t}`);
  // IAM: a maxLength of the document is the one enforced (IAM.0011 naming the field).
  const user = body('/v3/users', 'post')['properties']['user']['properties'];
  const long = 'n'.repeat((user['name']['maxLength'] as number) + 1);
  const u = await signedHttp('POST', `${stack.apiUrl}/v3/users`, JSON.stringify({ user: { name: long } }), { ak: s.ak, sk: s.sk });
  assert.equal(u.status, 400);
  assert.equal(u.json.error_code, 'IAM.0011');
  assert.match(u.json.error_msg, /user\.name must be a string of at most 64 characters/);
  // Nova: the document's required field, in Nova's words.
  const token = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { name: s.user, password: s.password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } },
  }));
  assert.deepEqual(body('/v2.1/{project_id}/servers/{server_id}/remote-consoles', 'post')['required'], ['remote_console']);
  const n = await http('POST', `${stack.apiUrl}/v2.1/${s.projectId}/servers/${s.active.id}/remote-consoles`,
    { 'x-auth-token': String(token.headers['x-subject-token']), 'content-type': 'application/json', 'openstack-api-version': 'compute 2.6' }, '{}');
  assert.equal(n.status, 400);
  assert.match(n.json.badRequest.message, /^Invalid input for field\/attribute remote_console\. Value: \{\}\. 'remote_console' is a required property$/);
});

test('real answers match the schemas the document gives them (success and error bodies of each door)', async () => {
  await stack.app.services.identity.createUser({ domain: s.domain, name: 'doc-admin', password: 'Adm1n-passw0rd', admin: true });
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(served, 'openapi');
  const pointer = (...parts: string[]): string => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
  const checked: string[] = [];
  /** The answer's body against the document's schema for its path, method and status. */
  const holds = (path: string, method: string, r: { status: number; json: unknown }): void => {
    const answers = served['paths'][path][method]['responses'];
    const code = String(r.status) in answers ? String(r.status) : 'default';
    assert.ok(answers[code]?.content?.['application/json'], `${method} ${path} ${r.status}: documented as JSON`);
    const check = ajv.getSchema(`openapi#/${pointer('paths', path, method, 'responses', code, 'content', 'application/json', 'schema')}`)!;
    assert.ok(check(r.json), `${method} ${path} ${r.status}: ${JSON.stringify(check.errors)} in ${JSON.stringify(r.json).slice(0, 300)}`);
    checked.push(`${method} ${path} ${r.status}`);
  };
  const tokenOf = async (name: string, password: string): Promise<string> => {
    const r = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name, password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } },
    }));
    holds('/v3/auth/tokens', 'post', r);
    return String(r.headers['x-subject-token']);
  };
  const token = await tokenOf(s.user, s.password);
  const admin = await tokenOf('doc-admin', 'Adm1n-passw0rd');
  const signed = (method: string, url: string, body = '') => signedHttp(method, `${stack.apiUrl}${url}`, body, { ak: s.ak, sk: s.sk, projectId: s.projectId });
  const get = (url: string, as = token, headers: Record<string, string> = {}) => http('GET', `${stack.apiUrl}${url}`, { 'x-auth-token': as, ...headers });
  const P = s.projectId;
  const ecs = '/v1/{project_id}/cloudservers';

  holds(`${ecs}/{server_id}/remote_console`, 'post', await signed('POST', `/v1/${P}/cloudservers/${s.active.id}/remote_console`, JSON.stringify({ remote_console: { type: 'novnc', protocol: 'vnc' } })));
  holds(`${ecs}/{server_id}/remote_console`, 'post', await signed('POST', `/v1/${P}/cloudservers/${s.active.id}/remote_console`, '{}'));
  holds(`${ecs}/{server_id}/remote_console`, 'post', await http('POST', `${stack.apiUrl}/v1/${P}/cloudservers/${s.active.id}/remote_console`, { 'content-type': 'application/json' }, '{}'));
  holds(`${ecs}/{server_id}`, 'get', await signed('GET', `/v1/${P}/cloudservers/${s.active.id}`));
  holds(`${ecs}/{server_id}`, 'get', await signed('GET', `/v1/${P}/cloudservers/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`));
  holds(`${ecs}/detail`, 'get', await signed('GET', `/v1/${P}/cloudservers/detail?limit=2`));
  holds(`${ecs}/action`, 'post', await signed('POST', `/v1/${P}/cloudservers/action`, JSON.stringify({ 'os-start': { servers: [{ id: s.active.id }] } })));
  holds('/v1/{project_id}/recordings', 'get', await signed('GET', `/v1/${P}/recordings`));
  holds('/v3/auth/tokens', 'get', await get('/v3/auth/tokens', token, { 'x-subject-token': token }));
  holds('/v3/auth/tokens', 'get', await get('/v3/auth/tokens', token, { 'x-subject-token': 'nope' }));
  holds('/v3/users', 'get', await get('/v3/users', admin));
  holds('/v3/users', 'post', await http('POST', `${stack.apiUrl}/v3/users`, { 'x-auth-token': admin, 'content-type': 'application/json' }, JSON.stringify({ user: { name: 'doc-user', password: 'D0c-passw0rd' } })));
  holds('/v3/projects', 'get', await get('/v3/projects', admin));
  holds('/v3/auth/projects', 'get', await get('/v3/auth/projects'));
  holds('/v3/auth/domains', 'get', await get('/v3/auth/domains'));
  holds('/v3.0/OS-CREDENTIAL/credentials', 'get', await get('/v3.0/OS-CREDENTIAL/credentials', admin));
  holds('/v3', 'get', await get('/v3'));
  holds('/', 'get', await get('/'));
  holds('/v2.1', 'get', await get('/v2.1'));
  holds('/v2.1/{project_id}/servers', 'get', await get(`/v2.1/${P}/servers`));
  holds('/v2.1/{project_id}/servers/detail', 'get', await get(`/v2.1/${P}/servers/detail`, token, { 'openstack-api-version': 'compute latest' }));
  holds('/v2.1/{project_id}/servers/{server_id}', 'get', await get(`/v2.1/${P}/servers/${s.active.id}`));
  holds('/v2.1/{project_id}/servers/{server_id}', 'get', await get(`/v2.1/${P}/servers/${s.active.id}`, 'not-a-token'));
  holds('/v2.1/{project_id}/servers/{server_id}', 'get', await get(`/v2.1/${P}/servers/${s.foreign.id}`));
  holds('/image/v2/images', 'get', await get('/image/v2/images'));
  holds('/image/versions', 'get', await get('/image/versions'));
  holds('/admin/v1/servers', 'get', await get('/admin/v1/servers', admin));
  holds('/admin/v1/servers', 'get', await get('/admin/v1/servers', token));
  holds('/admin/v1/audit', 'get', await get('/admin/v1/audit?limit=5', admin));
  holds('/admin/v1/sessions', 'get', await get('/admin/v1/sessions', admin));
  holds('/healthz', 'get', await get('/healthz'));
  holds('/readyz', 'get', await get('/readyz'));
  assert.ok(checked.length >= 30, checked.join('\n'));
});
