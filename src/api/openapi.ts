/**
 * What a route says about itself (its `config.openapi`) beside the schemas the server validates
 * with (fastify's `schema`: path and query; the body schema the route checks after
 * authentication): summary, body, answers, how the caller authenticates. The admin API's routes
 * carry it, the material an OpenAPI document of the surface is to be generated from.
 */

export interface OpenApiAnswer {
  readonly description: string;
  readonly schema?: object;
  /** Default application/json. */
  readonly contentType?: string;
}

/** What a route says about itself for the document (in its `config.openapi`). */
export interface RouteDoc {
  readonly summary: string;
  readonly tags: readonly string[];
  /** The request body's schema (the route validates the body with it after authentication). */
  readonly body?: object;
  readonly bodyDescription?: string;
  /** Status code -> answer. */
  readonly responses: Readonly<Record<string, OpenApiAnswer>>;
  /** How the caller authenticates: IAM token or AK/SK signature; `admin`: a domain administrator's; `none`. */
  readonly auth: 'credential' | 'admin' | 'none';
  /** Header parameters, documented only (e.g. X-Subject-Token). */
  readonly headers?: Readonly<Record<string, { description: string; required?: boolean }>>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    openapi?: RouteDoc;
  }
}
