/**
 * Query parameters read by hand (their parsing keeps each door's words and leniencies: an empty
 * value taken as absent, Nova's clamped limit), with their bounds, defaults and allowed values
 * taken from the schema the route declares (`config.openapi.query`): the parser and the OpenAPI
 * document read the same numbers.
 */
import type { FastifyRequest } from 'fastify';
import './openapi.js';
import './request-context.js';

interface Declared {
  readonly minimum?: number;
  readonly maximum?: number;
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
}

function declared(req: FastifyRequest, name: string): Declared {
  const q = req.routeOptions.config.openapi?.query as { properties?: Record<string, Declared> } | undefined;
  const p = q?.properties?.[name];
  // A route reading a parameter declares it: a missing one is our mistake, not the caller's.
  if (!p) throw new Error(`route ${req.routeOptions.method} ${req.routeOptions.url} declares no query parameter ${name}`);
  return p;
}

/** An integer parameter's declared bounds and default (bounds default to 0 and MAX_SAFE_INTEGER). */
export function declaredInt(req: FastifyRequest, name: string): { min: number; max: number; dflt: number } {
  const p = declared(req, name);
  return { min: p.minimum ?? 0, max: p.maximum ?? Number.MAX_SAFE_INTEGER, dflt: typeof p.default === 'number' ? p.default : p.minimum ?? 0 };
}

/** A string parameter's declared values and default. */
export function declaredEnum(req: FastifyRequest, name: string): { values: readonly string[]; dflt: string | undefined } {
  const p = declared(req, name);
  return { values: (p.enum ?? []).map(String), dflt: typeof p.default === 'string' ? p.default : undefined };
}
