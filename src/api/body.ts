/** Reading JSON request bodies: empty, non-JSON and wrong types each give a clear error. */
import { ConsoleError } from '../errors.js';

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
