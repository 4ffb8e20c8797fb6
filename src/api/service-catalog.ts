/**
 * The service catalog in Keystone v3 token answers, so that keystoneauth-based clients (the
 * `openstack` CLI, openstacksdk, novaclient) find the compute endpoint by themselves: `identity`
 * (this API's `/v3`) and `compute` (this API's `/v2.1/{project_id}`), each for the `public`,
 * `internal` and `admin` interfaces, in the token's region; and `image` (this API's `/image`: an
 * image service with no images, since the CLI's `server list` looks image names up and cannot
 * start without an image endpoint). As in Huawei Cloud, a project is named
 * after its region (`cn-north-4`), so the project's name is the region id.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { baseUrlOf } from './nova-routes.js';
import { DISCOVERY } from './route-docs.js';

const INTERFACES = ['public', 'internal', 'admin'] as const;

/** Stable ids (clients do not read them, but Keystone always sends them). */
const SERVICE_IDS = { identity: randomUUID().replace(/-/g, ''), compute: randomUUID().replace(/-/g, ''), image: randomUUID().replace(/-/g, '') };

export interface CatalogEntry {
  readonly id: string;
  readonly type: string;
  readonly name: string;
  readonly endpoints: ReadonlyArray<{ id: string; interface: string; region: string; region_id: string; url: string }>;
}

/** The catalog of a token scoped to `project` (base: this API's URL as the caller reached it). */
export function serviceCatalog(base: string, project: { id: string; name: string }): CatalogEntry[] {
  const region = project.name;
  const entry = (type: 'identity' | 'compute' | 'image', name: string, url: string): CatalogEntry => ({
    id: SERVICE_IDS[type], type, name,
    endpoints: INTERFACES.map((i) => ({ id: `${SERVICE_IDS[type]}-${i}`, interface: i, region, region_id: region, url })),
  });
  return [entry('identity', 'keystone', `${base}/v3`), entry('compute', 'nova', `${base}/v2.1/${project.id}`), entry('image', 'glance', `${base}/image`)];
}

/**
 * The image service of the catalog: Glance's version documents and an empty image list (for the
 * caller's project, after authentication). We keep no images: servers show "booted from volume".
 */
export function registerEmptyImageService(app: FastifyInstance, authenticate: (req: FastifyRequest) => Promise<unknown>): void {
  const versions = (base: string): unknown => ({ versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ rel: 'self', href: `${base}/image/v2/` }] }] });
  for (const path of ['/image', '/image/', '/image/versions']) app.get(path, { config: DISCOVERY.imageVersions }, async (req, reply) => reply.type('application/json').send(versions(baseUrlOf(req))));
  app.get('/image/v2/images', { config: DISCOVERY.images }, async (req, reply) => {
    await authenticate(req);
    return reply.type('application/json').send({ images: [], schema: '/v2/schemas/images', first: '/v2/images' });
  });
}

/** `GET /v3`: Keystone's version document (keystoneauth discovers the identity API with it). */
export function registerIdentityVersion(app: FastifyInstance): void {
  const doc = (base: string): unknown => ({
    version: {
      id: 'v3.14', status: 'stable', updated: '2020-04-07T00:00:00Z',
      links: [{ rel: 'self', href: `${base}/v3/` }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
    },
  });
  app.get('/v3', { config: DISCOVERY.identity }, async (req, reply) => reply.type('application/json').send(doc(baseUrlOf(req))));
  app.get('/v3/', { config: DISCOVERY.identity }, async (req, reply) => reply.type('application/json').send(doc(baseUrlOf(req))));
}
