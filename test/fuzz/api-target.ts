/**
 * Fuzz target: the HTTP API on a real stack. Hostile methods, request targets, headers and bodies,
 * unsigned, signed with a valid signature over the hostile request (so that it reaches body
 * validation), or carrying a valid IAM token. Every answer must be a clear refusal in Huawei's
 * shape (or a success), never a 5xx, a stack trace or an error-level log line, and the server
 * must still answer /healthz afterwards.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import fc from 'fast-check';
import { formatSdkDate, sha256Hex, signRequest } from '../../src/identity/sdk-hmac-signer.js';
import { assertHealthy, clearLogs, errorLogLines, type ApiEnv } from './fuzz-env.js';
import { bytes, headerValueSafe, hostileString, requestTargetSafe } from './generators.js';
import type { FuzzTarget } from './runner.js';
import { authorizationHeader } from './sdk-signer-targets.js';

export interface ApiCase {
  method: string;
  /** Request target as sent: path and query, characters 0x21-0xff. */
  target: string;
  /** Lower-case names. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** none: only the generated headers; sdk: signed with the seeded AK/SK; iam: the seeded IAM token. */
  auth: 'none' | 'sdk' | 'iam';
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Bytes that followed a complete answer on the connection (a body sent with a HEAD answer). */
  trailing?: string;
}

/** Placeholders in generated targets, replaced by the seeded ids when a case runs. */
const PROJECT = '{project}';
const OTHER_PROJECT = '{other-project}';
const SERVER = '{server}';
const SHUTOFF = '{shutoff-server}';
const FOREIGN = '{foreign-server}';

const segment = fc.oneof(
  { weight: 2, arbitrary: hostileString(40).map(requestTargetSafe) },
  { weight: 1, arbitrary: hostileString(40).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '?'))) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(256), 'a'.repeat(257), '%7Bproject_id%7D', 'detail', '', '.', '..', '%2e%2e', '0') },
);
const project = fc.oneof({ weight: 4, arbitrary: fc.constant(PROJECT) }, { weight: 1, arbitrary: fc.constant(OTHER_PROJECT) }, { weight: 2, arbitrary: segment });
const server = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(SERVER, SHUTOFF, FOREIGN) }, { weight: 2, arbitrary: segment });
const anyMethod = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('POST', 'GET') },
  { weight: 4, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
  { weight: 1, arbitrary: fc.constantFrom('TRACE', 'PROPFIND', 'FOO', 'post') },
);
/** The route's own method most of the time, so that most cases get past routing. */
const methodFor = (own: string): fc.Arbitrary<string> => fc.oneof({ weight: 4, arbitrary: fc.constant(own) }, { weight: 1, arbitrary: anyMethod });
const route: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(methodFor('POST'), project, server).map(([m, p, sv]): [string, string] => [m, `/v1/${p}/cloudservers/${sv}/remote_console`]) },
  { weight: 2, arbitrary: fc.tuple(methodFor('GET'), project).map(([m, p]): [string, string] => [m, `/v1/${p}/cloudservers/detail`]) },
  { weight: 2, arbitrary: fc.tuple(methodFor('GET'), project, server).map(([m, p, sv]): [string, string] => [m, `/v1/${p}/cloudservers/${sv}`]) },
  { weight: 2, arbitrary: fc.tuple(anyMethod, fc.constantFrom('/v3/auth/tokens', '/healthz', '/readyz', '/metrics', '/', '//', '/v1', '/v1/', '/V1/x')) },
  { weight: 1, arbitrary: fc.tuple(anyMethod, fc.array(segment, { maxLength: 6 }).map((segs) => '/' + segs.join('/'))) },
);
const queryValue = fc.oneof(fc.constantFrom('0', '1', '25', '1000', '1001', '-1', '99999999999', 'ACTIVE', 'RUNNING', 'web-01', ''), hostileString(30));
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom('limit', 'offset', 'status', 'name', 'marker', 'limit[]'), hostileString(10)), queryValue), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
const methodAndTarget = fc.tuple(route, fc.option(query, { nil: undefined, freq: 3 }), fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }))
  .map(([[m, p], q, trailing]) => [m, requestTargetSafe(`${p}${trailing ? '/' : ''}${q !== undefined ? `?${q}` : ''}`)] as const);

const contentType = fc.oneof(
  fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/vnd.api+json', 'text/plain',
    'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json, text/plain', '*/*', 'application/jsonx'),
  hostileString(40),
);
const headerPair: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 4, arbitrary: contentType.map((v) => ['content-type', v]) },
  { weight: 2, arbitrary: authorizationHeader.map((v) => ['authorization', v]) },
  { weight: 2, arbitrary: fc.oneof(fc.integer({ min: -20, max: 20 }).map((m) => formatSdkDate(Date.now() + m * 60_000)), hostileString(20)).map((v) => ['x-sdk-date', v]) },
  { weight: 2, arbitrary: fc.oneof(hostileString(60), fc.constant('x'.repeat(1025))).map((v) => ['x-auth-token', v]) },
  { weight: 1, arbitrary: fc.oneof(fc.constant(PROJECT), hostileString(40)).map((v) => ['x-project-id', v]) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom('x-language', 'x-sdk-content-sha256', 'x-subject-token', 'accept', 'x-forwarded-for', 'content-encoding', 'accept-encoding', 'expect', 'x-request-id', 'cookie'), hostileString(60)),
  },
  { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), hostileString(100)) },
).map(([k, v]): [string, string] => [k, headerValueSafe(v)]);

const validBody = { remote_console: { type: 'novnc', protocol: 'vnc' } };
const jsonish: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(JSON.stringify(validBody)) },
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.oneof(fc.constant<unknown>('novnc'), fc.jsonValue({ maxDepth: 2 }), hostileString(30)),
      protocol: fc.oneof(fc.constant<unknown>('vnc'), fc.jsonValue({ maxDepth: 2 }), hostileString(30)),
      extra: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
    }, { requiredKeys: [] }).map((rc) => JSON.stringify({ remote_console: rc })),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5000 }).map((n) => '{"remote_console":' + '{"a":'.repeat(n) + '1' + '}'.repeat(n + 1)) },
  { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"type":"novnc"}}', '{"remote_console":{"__proto__":{"type":"novnc","protocol":"vnc"}}}', '{"remote_console":{"type":"novnc","protocol":"vnc"', '\ufeff{}', 'null', '1e999') },
  {
    weight: 1,
    arbitrary: fc.record({ user: hostileString(20), password: hostileString(20), domain: hostileString(10), project: fc.oneof(fc.constant<unknown>({ id: PROJECT }), fc.jsonValue({ maxDepth: 2 })) })
      .map((o) => JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: o.user, password: o.password, domain: { name: o.domain } } } }, scope: { project: o.project } } })),
  },
);
const body: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 8, arbitrary: jsonish.map((s) => Buffer.from(s, 'utf8')) },
  { weight: 1, arbitrary: bytes(200) },
  { weight: 1, arbitrary: fc.tuple(jsonish, bytes(4)).map(([s, junk]) => Buffer.concat([Buffer.from(s), Buffer.from([0xff, 0xfe, 0xc3]), junk])) },
  // The body limit is 64 KiB: just under it, at it and past it.
  { weight: 1, arbitrary: fc.integer({ min: 65536 - 64, max: 65536 + 64 }).map((n) => Buffer.from(`{"remote_console":{"type":"${'n'.repeat(Math.max(0, n - 45))}","protocol":"vnc"}}`)) },
);

export const apiCaseArbitrary: fc.Arbitrary<ApiCase> = fc.record({
  route: methodAndTarget,
  headers: fc.array(headerPair, { maxLength: 5 }),
  body,
  auth: fc.constantFrom<ApiCase['auth']>('none', 'sdk', 'sdk', 'iam'),
}).map(({ route: [method, target], ...rest }) => ({ method, target, ...rest }));

function send(base: string, method: string, path: string, headers: Record<string, string>, payload: Buffer): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    let answer: Answer | undefined;
    const req = request({
      host: u.hostname, port: u.port, method, path, agent: false, timeout: 10_000,
      headers: { ...headers, ...(payload.length ? { 'content-length': String(payload.length) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      answer = { status: res.statusCode ?? 0, headers: res.headers, text: '' };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ ...answer!, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within 10 s to ${method} ${path}`)));
    req.on('error', (e: Error & { rawPacket?: Buffer }) => {
      // An answer followed by bytes the client cannot parse: keep both, the check decides.
      if (answer) resolve({ ...answer, trailing: e.rawPacket?.toString('latin1') ?? e.message });
      else reject(e);
    });
    req.end(payload);
  });
}

/** What only a stack trace or a leaked internal looks like (a message may echo the caller's own input). */
const LEAK = /\n\s+at |at [\w.<>]+ \(|node_modules|\/src\/|\/dist\/|\w+Error: /;

/** Open bugs whose symptom the property tolerates (and counts) until they are fixed; see docs/reliability.md. */
export const KNOWN_API_BUGS = {
  /**
   * Refusals made before fastify routes the request (Node's HTTP parser: unknown method, bad
   * request line, header overflow, bad chunking; Node's 417 for an unknown Expect) come in
   * fastify's default shape or empty, without X-Request-Id.
   */
  parserRefusal: 'known: refusal before routing, not in Huawei shape, no X-Request-Id',
  /** frameworkErrors (bad URL escape, over-long parameter) answer without the X-Request-Id header. */
  frameworkRefusal: 'known: framework refusal without X-Request-Id',
} as const;

function classifyKnown(a: Answer, json: unknown): string | undefined {
  const o = json as Record<string, unknown> | undefined;
  if (a.headers['x-request-id'] !== undefined) return undefined;
  const fastifyDefault = o && typeof o['error'] === 'string' && typeof o['statusCode'] === 'number' && 'message' in o;
  if (fastifyDefault || (a.text === '' && [400, 417, 431].includes(a.status))) return KNOWN_API_BUGS.parserRefusal;
  if (a.status === 400 && o && o['error_code'] === 'APIGW.0101' && o['error_msg'] === 'The request is malformed.') return KNOWN_API_BUGS.frameworkRefusal;
  return undefined;
}

/** Checks the Huawei error shape; returns the code. */
function huaweiErrorCode(json: unknown, a: Answer, path: string): string {
  assert.ok(json !== null && typeof json === 'object', `error body is not a JSON object: ${a.text.slice(0, 200)}`);
  const o = json as Record<string, unknown>;
  if ('error_code' in o) {
    assert.equal(typeof o['error_code'], 'string');
    assert.equal(typeof o['error_msg'], 'string');
    if (String(o['error_code']).startsWith('APIGW.')) assert.equal(o['request_id'], a.headers['x-request-id'], 'request_id is the X-Request-Id');
    // Which authentication check refused, for the statistics.
    const why = o['error_code'] === 'APIGW.0301' ? ` (${String(o['error_msg']).replace(/^Incorrect IAM authentication information: /, '').replace(/\d+/g, 'N').slice(0, 48)})` : '';
    return `${String(o['error_code'])}${why}`;
  }
  const e = o['error'] as Record<string, unknown> | undefined;
  assert.ok(e && typeof e === 'object', `not a Huawei error body: ${a.text.slice(0, 200)}`);
  // IAM (Keystone) answers 401 with a numeric code; ECS codes are strings.
  assert.ok(typeof e['code'] === 'string' || (path.startsWith('/v3/') && typeof e['code'] === 'number'), `error.code: ${String(e['code'])}`);
  assert.equal(typeof e['message'], 'string');
  return String(e['code']);
}

export function apiTarget(env: ApiEnv): FuzzTarget<ApiCase> {
  const s = env.seed;
  const fill = (t: string): string => t.split(PROJECT).join(s.projectId).split(OTHER_PROJECT).join(s.otherProjectId)
    .split(SHUTOFF).join(s.shutoff.id).split(FOREIGN).join(s.foreign.id).split(SERVER).join(s.active.id);
  return {
    name: 'api-http',
    arbitrary: apiCaseArbitrary,
    codec: {
      ext: 'json',
      decode: (v) => {
        const o = v as Omit<ApiCase, 'body'> & { body?: BodyText; bodyHex?: string };
        return { method: o.method, target: o.target, headers: o.headers, auth: o.auth, body: o.bodyHex !== undefined ? Buffer.from(o.bodyHex, 'hex') : Buffer.from(bodyText(o.body ?? ''), 'utf8') };
      },
      encode: (c) => {
        const text = c.body.toString('utf8');
        const { body: _b, ...rest } = c;
        return Buffer.from(text, 'utf8').equals(c.body) ? { ...rest, body: text } : { ...rest, bodyHex: c.body.toString('hex') };
      },
    },
    boundedRuns: 2500,
    longShare: 0.15,
    caseTimeoutMs: 15_000,
    between: {
      everyCases: 500,
      check: () => assertHealthy(env.stack),
    },
    async check(c) {
      clearLogs(env.stack);
      const path = fill(c.target);
      let headers: Record<string, string> = {};
      for (const [k, v] of c.headers) headers[k] = fill(v);
      if (c.auth === 'iam') headers['x-auth-token'] = env.iamToken;
      if (c.auth === 'sdk') {
        // signRequest reads only host, pathname and search: the raw target goes in as is, without
        // the normalisation a URL object would apply.
        const q = path.indexOf('?');
        const url = { host: new URL(env.stack.apiUrl).host, pathname: q === -1 ? path : path.slice(0, q), search: q === -1 ? '' : path.slice(q) } as URL;
        const text = c.body.toString('utf8');
        // The signature covers the bytes as sent; bytes that are not UTF-8 go by their hash, the
        // way the SDK signs a body it cannot carry as text.
        if (!Buffer.from(text, 'utf8').equals(c.body)) headers['x-sdk-content-sha256'] ??= sha256Hex(c.body);
        headers = signRequest({ method: c.method, url, headers, body: text }, s.ak, s.sk, Date.now());
      }
      const a = await send(env.stack.apiUrl, c.method, path, headers, c.body);
      const input = `${path} ${decodeSafely(path)} ${JSON.stringify(headers)} ${c.body.toString('latin1')}`;
      assert.ok(a.status > 0 && a.status < 500, `status ${a.status}: ${a.text.slice(0, 300)}`);
      const leak = LEAK.exec(a.text);
      assert.ok(!leak || input.includes(leak[0]), `the answer leaks internals (${leak?.[0]}): ${a.text.slice(0, 300)}`);
      assert.ok(a.text.length < 4096 || a.status < 300, `an error answer of ${a.text.length} bytes`);
      const errors = errorLogLines(env.stack);
      assert.deepEqual(errors, [], 'error-level log lines: the code met something it did not expect');
      if (a.trailing !== undefined) {
        assert.ok(c.method === 'HEAD' && a.headers['x-request-id'] === undefined, `bytes after the answer: ${a.trailing.slice(0, 200)}`);
        // The parser-level refusal writes its JSON body even to HEAD, corrupting the connection.
        return KNOWN_API_BUGS.parserRefusal;
      }
      if (c.method === 'HEAD') return `HEAD ${a.status}`;
      let json: unknown;
      try {
        json = a.text ? JSON.parse(a.text) : undefined;
      } catch {
        json = undefined;
      }
      const known = classifyKnown(a, json);
      if (known) return known;
      if (a.status >= 300 && a.status !== 304) {
        assert.match(String(a.headers['x-request-id']), /^[0-9a-f]{32}$/, 'every answer carries X-Request-Id');
        assert.match(String(a.headers['content-type']), /^application\/json/, `error content type ${String(a.headers['content-type'])}`);
        return `${a.status} ${huaweiErrorCode(json, a, path)}`;
      }
      if (String(a.headers['content-type']).startsWith('application/json') && a.text) assert.notEqual(json, undefined, 'a JSON success parses');
      return `${a.status} ${c.method} ${successRoute(path)}`;
    },
  };
}

/**
 * A body in a corpus file: text, or pieces of text where `[unit, n]` stands for `unit` repeated n
 * times, so that a 64 KiB body stays readable in review.
 */
type BodyText = string | Array<string | [string, number]>;

function bodyText(b: BodyText): string {
  return typeof b === 'string' ? b : b.map((p) => (typeof p === 'string' ? p : p[0].repeat(p[1]))).join('');
}

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function successRoute(path: string): string {
  const p = path.split('?')[0]!;
  if (p.endsWith('/remote_console')) return 'remote_console';
  if (p.endsWith('/detail')) return 'list';
  if (p.startsWith('/v1/')) return 'show';
  return p.slice(0, 20);
}
