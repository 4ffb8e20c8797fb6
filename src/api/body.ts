/** Reading JSON request bodies: empty, non-JSON and wrong types each give a clear error. */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifyRequest } from 'fastify';
import { ConsoleError } from '../errors.js';
import './openapi.js';
import './request-context.js';

/** Parses a raw JSON body. `Common.0002` when empty; `Ecs.0005`-class errors otherwise. */
export function parseJsonBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) throw new ConsoleError('BODY_EMPTY', 'The request body is empty.');
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct !== '' && ct !== 'application/json' && !ct.endsWith('+json')) {
    throw new ConsoleError('BODY_INVALID', `Invalid request body: Content-Type must be application/json, got ${ct.slice(0, 64)}.`);
  }
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ConsoleError('BODY_INVALID', 'Invalid request body: it is not valid JSON.');
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A required string field; the message names the field path. */
export function requireString(obj: Record<string, unknown>, key: string, path: string): string {
  const v = obj[key];
  if (v === undefined || v === null) throw new ConsoleError('BODY_INVALID', `Invalid request body: ${path} is required.`);
  if (typeof v !== 'string') throw new ConsoleError('BODY_INVALID', `Invalid request body: ${path} must be a string.`);
  return v;
}

/** A required object field. */
export function requireObject(obj: Record<string, unknown>, key: string, path: string): Record<string, unknown> {
  const v = obj[key];
  if (v === undefined || v === null) throw new ConsoleError('BODY_INVALID', `Invalid request body: ${path} is required.`);
  if (!isObject(v)) throw new ConsoleError('BODY_INVALID', `Invalid request body: ${path} must be an object.`);
  return v;
}

/*
 * Bodies checked against the schema their route declares (`config.openapi.body`): the schema the
 * OpenAPI document shows is the one the request is held to. Checked without coercion, defaults or
 * removal (a `1` where a string belongs is refused, not turned into "1"), after authentication.
 */

// NOTE: a compiler and a cache of compiled schemas, keyed by the (constant) schema objects; no
// request state lives here.
const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, verbose: true });
const compiled = new WeakMap<object, ValidateFunction>();

/** Whether `schema` is compiled already (the API compiles its routes' schemas as it registers them). */
export function isCompiled(schema: object): boolean {
  return compiled.has(schema);
}

/** The compiled check of a declared body schema (compiled once per schema). */
export function bodyValidator(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) compiled.set(schema, (v = ajv.compile(schema)));
  return v;
}

const A: Record<string, string> = { object: 'an object', array: 'an array', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', null: 'null' };

/** `a`, `a or b`, `a, b or c`. */
function either(words: readonly string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}

function arrayPhrase(s: Record<string, unknown>): string {
  const min = s['minItems'];
  const max = s['maxItems'];
  return typeof min === 'number' && typeof max === 'number' ? `must be an array of ${min} to ${max} items` : 'must be an array';
}

/** The first schema violation as a sentence naming the field (`remote_console.type must be novnc or serial.`). */
export function bodyProblem(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.').replace(/~1/g, '/').replace(/~0/g, '~');
  const at = (name: string): string => (path ? `${path}.${name}` : name);
  const s = (e.parentSchema ?? {}) as Record<string, unknown>;
  const props = Object.keys((s['properties'] ?? {}) as object);
  switch (e.keyword) {
    case 'required': return `${at((e.params as { missingProperty: string }).missingProperty)} is required.`;
    case 'type': {
      if (path === '') return 'it must be a JSON object.';
      // null stands for absent, as the hand-written checks had it.
      if (e.data === null) return `${path} is required.`;
      const types = ([] as string[]).concat(s['type'] as string | string[]).filter((t) => t !== 'null');
      return types.includes('array') ? `${path} ${arrayPhrase(s)}.` : `${path} must be ${either(types.map((t) => A[t] ?? t))}.`;
    }
    case 'minItems': case 'maxItems': return `${path} ${arrayPhrase(s)}.`;
    case 'enum': return `${path} must be ${either((s['enum'] as unknown[]).filter((x) => x !== null).map(String))}.`;
    case 'const': return `${path} must be ${JSON.stringify(s['const'])}.`;
    case 'contains': return `${path} must include ${JSON.stringify((s['contains'] as { const?: unknown }).const)}.`;
    case 'minLength': return s['minLength'] === 1 ? `${path} must be a non-empty string.` : `${path} must be at least ${String(s['minLength'])} characters.`;
    case 'maxLength': return `${path} must be a string of at most ${String(s['maxLength'])} characters.`;
    case 'minProperties': case 'maxProperties': case 'additionalProperties':
      return s['maxProperties'] === 1 ? `${path ? `${path}: ` : ''}exactly one of ${either(props)} is supported.` : `${path || 'the body'} may hold only ${either(props)}.`;
    default: return `${path || 'the body'} ${e.message ?? 'is not valid'}.`;
  }
}

/** ConsoleError BODY_INVALID: `prefix` and the problem. */
export const invalidBody = (prefix = '') => (e: ErrorObject): Error => new ConsoleError('BODY_INVALID', prefix + bodyProblem(e));

/**
 * The request's JSON body, checked against the schema its route declares (`config.openapi.body`).
 * ConsoleError BODY_EMPTY / BODY_INVALID when empty or not JSON; `invalid(first problem)` when the
 * schema refuses it.
 */
export function declaredBody(req: FastifyRequest, invalid: (e: ErrorObject) => Error = invalidBody()): unknown {
  const schema = req.routeOptions.config.openapi?.body;
  // A route that reads a body declares its schema: a missing one is our mistake, not the caller's.
  if (!schema) throw new Error(`route ${req.routeOptions.method} ${req.routeOptions.url} declares no body schema`);
  const body = parseJsonBody(req.rawBody ?? Buffer.alloc(0), req.headers['content-type']);
  const check = bodyValidator(schema);
  if (!check(body)) throw invalid(check.errors![0]!);
  return body;
}
