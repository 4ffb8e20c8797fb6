/**
 * The OpenAPI 3.1 document of the API listener, generated from the routes themselves: every route
 * registered on the listener is seen through fastify's `onRoute` hook, and its document entry is
 * built from what the server validates with (fastify's `schema`: params, querystring; the body
 * schema the route checks after authentication, in its `config.openapi.body`) and what the route
 * says about itself in `config.openapi` (summary, tags, how the caller authenticates, answers).
 * There is no second copy of a schema: docs/openapi.json is this document as served at
 * `GET /openapi.json` (`npm run openapi` writes it; a test fails when the two disagree).
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

export interface OpenApiAnswer {
  readonly description: string;
  readonly schema?: object;
  /** Default application/json; several when the answer may be any of them (one schema for all). */
  readonly contentType?: string | readonly string[];
  /** Response headers worth knowing (e.g. X-Subject-Token). */
  readonly headers?: Readonly<Record<string, { description: string; schema?: object }>>;
}

/** Which error bodies a route answers with (the generator adds the usual error answers in that shape). */
export type ErrorFamily = 'huawei' | 'iam' | 'nova' | 'none';

/** What a route says about itself for the document (in its `config.openapi`). */
export interface RouteDoc {
  readonly summary: string;
  /** Longer text (CommonMark). */
  readonly description?: string;
  readonly tags: readonly string[];
  /** The request body's schema (the route validates the body with it after authentication). */
  readonly body?: object;
  readonly bodyDescription?: string;
  /** Default application/json. */
  readonly bodyContentType?: string;
  /**
   * Query parameters the route reads by hand (not through fastify's `schema.querystring`), as an
   * object schema: the route's parser takes their bounds, defaults and values from it (query.ts).
   */
  readonly query?: object;
  /** Status code -> answer. */
  readonly responses: Readonly<Record<string, OpenApiAnswer>>;
  /**
   * How the caller authenticates: `credential` (IAM token or AK/SK signature); `admin`: a domain
   * administrator's; `none`.
   */
  readonly auth: 'credential' | 'admin' | 'none';
  /** Header parameters, documented only (e.g. X-Subject-Token). */
  readonly headers?: Readonly<Record<string, { description: string; required?: boolean }>>;
  /** Error bodies of the route's door; default: the admin tag's `iam`, otherwise `huawei`. */
  readonly errors?: ErrorFamily;
  /** Our extension, not a Huawei (or OpenStack) call, although its tag is theirs. */
  readonly ours?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    openapi?: RouteDoc;
  }
}

/** One route as fastify registered it (onRoute), the material of the document. */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly schema?: { params?: unknown; querystring?: unknown; body?: unknown; headers?: unknown };
  readonly doc?: RouteDoc;
  /** fastify's own HEAD route beside a GET (exposeHeadRoutes). */
  readonly head: boolean;
}

const ROUTES = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * Records every route registered on `app` from now on (call it before registering any). The
 * list is the route table the document and the route-walking test read.
 */
export function recordRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  const list: RegisteredRoute[] = [];
  ROUTES.set(app, list);
  const getRoutes = new Set<string>();
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    // A prefixed plugin's `/` route is registered as `/prefix` and `/prefix/`, but onRoute hears
    // of the first only (of their HEAD routes, both).
    const prefix = (r as RouteOptions & { prefix?: string }).prefix;
    const urls = prefix && r.url === prefix && (r.prefixTrailingSlash ?? 'both') === 'both' ? [r.url, `${r.url}/`] : [r.url];
    for (const m of methods) {
      const method = String(m).toUpperCase();
      for (const url of method === 'HEAD' ? [r.url] : urls) {
        if (method === 'GET') getRoutes.add(url);
        list.push({
          method, url, head: method === 'HEAD' && getRoutes.has(url),
          ...(r.schema ? { schema: r.schema as RegisteredRoute['schema'] } : {}),
          ...(r.config?.openapi ? { doc: r.config.openapi } : {}),
        });
      }
    }
  });
  return list;
}

/** The routes recorded on `app` by {@link recordRoutes} (empty when it was not called). */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return ROUTES.get(app) ?? [];
}

/** A fastify URL as an OpenAPI path: `:name` -> `{name}`, a trailing `*` -> `{path}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{path}');
}

/** Tags of the document; `ours` marks ecs-console's own extensions (not Huawei's or OpenStack's). */
const TAGS: ReadonlyArray<{ name: string; description: string; ours?: boolean }> = [
  { name: 'ecs', description: 'Huawei Cloud ECS calls, in the shapes the official Huawei SDKs send and read (remote_console, ShowServer, ListServersDetails, BatchStartServers/BatchStopServers). Errors: Huawei bodies.' },
  { name: 'iam', description: 'Huawei IAM calls (Keystone v3 shapes as Huawei IAM answers them): tokens, access keys, temporary credentials, users, projects, the caller\'s domain. Errors: Keystone bodies (`{"error":{"code","title","message"}}`) and `IAM.0011` for a bad body.' },
  { name: 'nova', description: 'The Nova-compatible compute API (Huawei\'s native OpenStack paths, `/v2.1/{project_id}/...`, microversions 2.1-2.60) and version discovery, for OpenStack clients. Errors: Nova bodies (`{"itemNotFound":{"code","message"}}`).' },
  { name: 'image', description: 'The catalog\'s image service: version documents and an empty image list (OpenStack clients need an image endpoint; no images are kept).' },
  { name: 'console-output', description: 'ecs-console extension, not a Huawei Cloud API: a serial console\'s output in Huawei\'s shape, beside remote_console.', ours: true },
  { name: 'screenshot', description: 'ecs-console extension, not a Huawei Cloud API: a server\'s console screenshot.', ours: true },
  { name: 'recordings', description: 'ecs-console extension, not a Huawei Cloud API: console session recordings and their playback page.', ours: true },
  { name: 'admin', description: 'ecs-console extension, not a Huawei Cloud API: the admin API (`/admin/v1`) for domain administrators: console targets, bulk sync, live sessions, audit search and export. Authenticated as the IAM API is; errors in Huawei IAM\'s bodies.', ours: true },
  { name: 'web', description: 'ecs-console extension, not a Huawei Cloud API: the operator\'s web page on the API listener.', ours: true },
  { name: 'operations', description: 'ecs-console extension, not a Huawei Cloud API: probes, metrics and this document.', ours: true },
];
const OURS = new Set(TAGS.filter((t) => t.ours).map((t) => t.name));
const EXTENSION_NOTE = 'ecs-console extension, not a Huawei Cloud API.';

const ERROR_SCHEMAS: Record<string, object> = {
  HuaweiError: {
    type: 'object', required: ['error'], description: 'Huawei ECS service error.',
    properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', examples: ['Ecs.0005'] }, message: { type: 'string' } } } },
  },
  HuaweiGatewayError: {
    type: 'object', required: ['error_code', 'error_msg', 'request_id'], description: 'Huawei API gateway error (authentication, throttling, unknown path, malformed request).',
    properties: { error_code: { type: 'string', examples: ['APIGW.0301'] }, error_msg: { type: 'string' }, request_id: { type: 'string' } },
  },
  KeystoneError: {
    type: 'object', required: ['error'], description: 'Keystone error, as Huawei IAM (and keystonemiddleware) answer.',
    properties: { error: { type: 'object', required: ['code', 'title', 'message'], properties: { code: { type: 'integer' }, title: { type: 'string' }, message: { type: 'string' } } } },
  },
  IamError: {
    type: 'object', required: ['error_code', 'error_msg'], description: 'Huawei IAM error (IAM.0011: the body is invalid; IAM.0004: no such token).',
    properties: { error_code: { type: 'string', examples: ['IAM.0011'] }, error_msg: { type: 'string' } },
  },
  NovaError: {
    type: 'object', minProperties: 1, maxProperties: 1, description: 'Nova fault: one property named for the fault (badRequest, itemNotFound, forbidden, conflictingRequest, overLimit, computeFault...).',
    additionalProperties: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'integer' }, message: { type: 'string' } } },
  },
};

const ref = (name: string): object => ({ $ref: `#/components/schemas/${name}` });
const anyOf = (...names: string[]): object => ({ anyOf: names.map(ref) });

/** The usual error answers of each door (a route's own `responses` override them). */
function errorAnswers(family: ErrorFamily, authenticated: boolean): Record<string, OpenApiAnswer> {
  const gateway = ref('HuaweiGatewayError');
  switch (family) {
    case 'huawei': return {
      '400': { description: 'Invalid request (Ecs.0005 naming the field, Common.0002 empty body, Common.0018 project mismatch) or malformed request (APIGW.0101).', schema: anyOf('HuaweiError', 'HuaweiGatewayError') },
      ...(authenticated ? {
        '401': { description: 'Not authenticated (APIGW.0301).', schema: gateway },
        '403': { description: 'Not allowed (Pdp.0001).', schema: ref('HuaweiError') },
        '429': { description: 'Throttled (APIGW.0308); see Retry-After.', schema: gateway },
      } : {}),
      '413': { description: 'Body too large (APIGW.0201).', schema: gateway },
      default: { description: 'Other errors (Common.0001 for an unexpected one).', schema: anyOf('HuaweiError', 'HuaweiGatewayError') },
    };
    case 'iam': return {
      '400': { description: 'Invalid request (IAM.0011 naming what is wrong).', schema: anyOf('IamError', 'KeystoneError') },
      ...(authenticated ? {
        '401': { description: 'Not authenticated.', schema: ref('KeystoneError') },
        '403': { description: 'Not allowed.', schema: ref('KeystoneError') },
        '429': { description: 'Throttled; see Retry-After.', schema: ref('KeystoneError') },
      } : {}),
      default: { description: 'Other errors (Keystone bodies; the gateway\'s for a malformed request).', schema: anyOf('KeystoneError', 'IamError', 'HuaweiError', 'HuaweiGatewayError') },
    };
    case 'nova': return {
      '400': { description: 'Invalid request (badRequest).', schema: ref('NovaError') },
      ...(authenticated ? {
        '401': { description: 'Not authenticated (Keystone body, WWW-Authenticate: Keystone uri="/v3").', schema: ref('KeystoneError') },
        '403': { description: 'Not allowed (forbidden).', schema: ref('NovaError') },
        '429': { description: 'Throttled (overLimit); see Retry-After.', schema: ref('NovaError') },
      } : {}),
      '406': { description: 'Microversion outside 2.1-2.60.', schema: ref('NovaError') },
      default: { description: 'Other errors (Nova faults).', schema: ref('NovaError') },
    };
    case 'none': return {};
  }
}

const CREDENTIAL = 'an IAM token (`X-Auth-Token`) or an AK/SK signature (`SDK-HMAC-SHA256`)';
const AUTH_NOTE: Record<RouteDoc['auth'], string> = {
  none: 'No authentication.',
  credential: `Authentication: ${CREDENTIAL}.`,
  admin: `Authentication: ${CREDENTIAL} of a domain administrator (a member of the domain's \`admin\` group), acting on their domain's projects.`,
};
const ERRORS_NOTE: Record<ErrorFamily, string | undefined> = {
  huawei: 'Errors: Huawei bodies (service `{"error":{"code","message"}}`, gateway `{"error_code","error_msg","request_id"}`).',
  iam: 'Errors: Huawei IAM\'s bodies (Keystone `{"error":{"code","title","message"}}`, `IAM.0011` for a bad body).',
  nova: 'Errors: Nova\'s fault bodies (`{"badRequest":{"code","message"}}`...); 401 in Keystone\'s.',
  none: undefined,
};

const PARAM_DESCRIPTIONS: Record<string, string> = {
  project_id: 'Project id.',
  server_id: 'Server id.',
  recording_id: 'Recording id.',
  access_key: 'Access key id (AK).',
  user_id: 'User id.',
  token: 'Console token.',
  session_id: 'Live session id.',
  availability_zone: 'Availability zone.',
  path: 'File path.',
};

const SECURITY_SCHEMES = {
  akSkSignature: {
    type: 'apiKey', in: 'header', name: 'Authorization',
    description: [
      'Huawei Cloud AK/SK signature (`SDK-HMAC-SHA256`, as the Huawei SDKs\' BasicCredentials and GlobalCredentials sign):',
      '',
      '`Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<lower-case names joined by ;>, Signature=<hex>` with `X-Sdk-Date: YYYYMMDDTHHMMSSZ` (UTC, within the configured skew of the server\'s clock) among the signed headers, and `host`.',
      '',
      '- CanonicalRequest = method \\n CanonicalURI (each segment URI-encoded, ending in `/`) \\n CanonicalQuery (keys, then values, sorted; URI-encoded) \\n CanonicalHeaders (`name:value\\n` for each signed header, values trimmed) \\n SignedHeaders \\n hex(sha256(body));',
      '- StringToSign = `SDK-HMAC-SHA256` \\n X-Sdk-Date \\n hex(sha256(CanonicalRequest));',
      '- Signature = hex(HMAC-SHA256(SK, StringToSign)), with no key derivation.',
      '',
      'GlobalCredentials add a signed `X-Domain-Id`; temporary credentials (securitytokens) add a signed `X-Security-Token`. A signed `X-Sdk-Content-Sha256` must be the body\'s hash (`UNSIGNED-PAYLOAD` only without a body).',
    ].join('\n'),
  },
  iamToken: {
    type: 'apiKey', in: 'header', name: 'X-Auth-Token',
    description: 'An IAM token (project-scoped), from `POST /v3/auth/tokens` (its `X-Subject-Token` answer header).',
  },
} as const;

type Json = Record<string, unknown>;

function asObject(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

/** Parameters (`in`) from an object schema's properties. */
function parametersOf(schema: unknown, where: 'path' | 'query' | 'header', names?: readonly string[]): Json[] {
  const s = asObject(schema);
  const props = asObject(s?.['properties']) ?? {};
  const required = new Set(Array.isArray(s?.['required']) ? (s['required'] as string[]) : []);
  const keys = names ?? Object.keys(props);
  return keys.map((name) => {
    const p = asObject(props[name]) ?? { type: 'string' };
    const { description, ...rest } = p as { description?: string } & Json;
    const text = description ?? (where === 'path' ? PARAM_DESCRIPTIONS[name] : undefined);
    return {
      name, in: where, required: where === 'path' || required.has(name),
      ...(text !== undefined ? { description: text } : {}),
      schema: Object.keys(rest).length > 0 ? rest : { type: 'string' },
    };
  });
}

function answer(a: OpenApiAnswer, head: boolean): Json {
  const out: Json = { description: a.description };
  if (a.headers) out['headers'] = Object.fromEntries(Object.entries(a.headers).map(([k, h]) => [k, { description: h.description, schema: h.schema ?? { type: 'string' } }]));
  const types = typeof a.contentType === 'string' ? [a.contentType] : a.contentType ?? ['application/json'];
  if (!head && a.schema) out['content'] = Object.fromEntries(types.map((t) => [t, { schema: a.schema }]));
  return out;
}

/** The document's operation of one route. */
function operation(r: RegisteredRoute, doc: RouteDoc): Json {
  const ours = doc.ours === true || doc.tags.some((t) => OURS.has(t));
  const pathNames = [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  const params = asObject(r.schema?.params);
  const parameters: Json[] = [
    ...parametersOf(params, 'path', pathNames),
    ...(r.url.endsWith('*') ? [{ name: 'path', in: 'path', required: true, description: PARAM_DESCRIPTIONS['path'], schema: { type: 'string' } }] : []),
    ...parametersOf(r.schema?.querystring ?? doc.query, 'query'),
    ...Object.entries(doc.headers ?? {}).map(([name, h]) => ({ name, in: 'header', required: h.required === true, description: h.description, schema: { type: 'string' } })),
  ];
  const family = doc.errors ?? (doc.tags.includes('admin') ? 'iam' : 'huawei');
  const usual = errorAnswers(family, doc.auth !== 'none');
  const own = Object.fromEntries(Object.entries(doc.responses).map(([code, a]) => {
    // An error answer that names no body has the door's error body.
    const body = a.schema ?? (/^[45]\d\d$|^default$/.test(code) ? (usual[code] ?? usual['default'])?.schema : undefined);
    return [code, body ? { ...a, schema: body } : a];
  }));
  const responses = { ...usual, ...own };
  const description = [doc.description, ours ? EXTENSION_NOTE : undefined, r.head ? 'HEAD: the GET\'s status and headers, no body.' : undefined,
    AUTH_NOTE[doc.auth], ERRORS_NOTE[family]]
    .filter((x) => x !== undefined).join('\n\n');
  const body = doc.body ?? r.schema?.body;
  return {
    summary: r.head ? `${doc.summary} (headers only)` : doc.summary,
    ...(description !== '' ? { description } : {}),
    tags: [...doc.tags],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body ? {
      requestBody: {
        required: true, ...(doc.bodyDescription ? { description: doc.bodyDescription } : {}),
        content: { [doc.bodyContentType ?? 'application/json']: { schema: body } },
      },
    } : {}),
    responses: Object.fromEntries(Object.entries(responses).map(([code, a]) => [code, answer(a, r.head)])),
    security: doc.auth === 'none' ? [] : [{ akSkSignature: [] }, { iamToken: [] }],
    ...(ours ? { 'x-ecs-console-extension': true } : {}),
  };
}

export interface DocumentInfo {
  readonly version: string;
}

/**
 * The OpenAPI 3.1 document of `routes`. A route without `config.openapi` is still listed (summary
 * "Undocumented route"), so that the document shows the gap; the route-walking test refuses it.
 */
export function openApiDocument(routes: readonly RegisteredRoute[], info: DocumentInfo): Json {
  const paths: Record<string, Json> = {};
  const tags = new Map(TAGS.map((t) => [t.name, { name: t.name, description: t.description }]));
  for (const r of routes) {
    const doc = r.doc ?? { summary: 'Undocumented route', tags: ['undocumented'], auth: 'none', responses: { default: { description: 'Undocumented.' } } };
    for (const t of doc.tags) if (!tags.has(t)) tags.set(t, { name: t, description: t });
    const path = openApiPath(r.url);
    paths[path] ??= {};
    paths[path]![r.method.toLowerCase()] = operation(r, doc);
  }
  const sortedPaths = Object.fromEntries(Object.keys(paths).sort().map((p) => [p, paths[p]]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'ecs-console API',
      version: info.version,
      summary: 'Self-hosted, Huawei-Cloud-ECS-compatible remote console service.',
      description: 'The HTTP surface of the API listener: the Huawei ECS and IAM calls (in the shapes the Huawei SDKs use), the Nova-compatible compute API, and ecs-console\'s own extensions (marked `x-ecs-console-extension` and so named in their descriptions): console output, screenshots, recordings, the admin API, probes and metrics. Every GET also answers HEAD. Generated from the routes the server registers and the schemas it validates with; see docs/api.md.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    tags: [...tags.values()],
    paths: sortedPaths,
    components: { schemas: ERROR_SCHEMAS, securitySchemes: SECURITY_SCHEMES },
  };
}
