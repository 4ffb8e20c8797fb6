/**
 * One node of the bench fleet in its own process: `ecs-console api` or `ecs-console proxy` (the
 * role given) on a shared PostgreSQL, as deployed (docs/deploy.md). The first API node seeds the
 * project, a user with an access key and the servers (the bench backend's echo port, VNC
 * authentication) and tells the runner what it made; the other nodes only their ports.
 *
 * The same limits as the single-node bench child are raised (rate limits off, session caps high,
 * no drain wait); everything else is the default configuration.
 */
import { rmSync } from 'node:fs';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { BENCH_LIMITS } from './lib/bench-limits.js';
import { announce, childArgs, serveIpc } from './lib/child-ipc.js';

export interface FleetChildArgs {
  dataDir: string;
  /** postgres://... of the run's database. */
  store: string;
  /** The fleet's master key (base64), the same on every node. */
  masterKey: string;
  role: 'api' | 'proxy';
  nodeId: string;
  logLevel: string;
  /** Seed the store (the first API node only). */
  seed?: { echoPort: number; backendPassword: string; servers: number };
}

export interface FleetChildReady {
  api?: number;
  proxy?: number;
  seeded?: { projectId: string; ak: string; sk: string; servers: string[] };
}

const args = childArgs<FleetChildArgs>();
const config = loadConfig({
  flags: { dataDir: args.dataDir, store: args.store, nodeId: args.nodeId, logLevel: args.logLevel, ...BENCH_LIMITS },
  env: { ECS_CONSOLE_MASTER_KEY: args.masterKey },
});
const app = await createApp(config, args.role);
let seeded: FleetChildReady['seeded'];
if (args.seed) {
  const { identity, inventory } = app.services;
  const project = await identity.createProject({ name: 'bench-fleet', domain: 'bench' });
  const user = await identity.createUser({ domain: 'bench', name: 'bench', password: 'Bench-passw0rd' });
  const key = await identity.createAccessKey({ userId: user.id, projectId: project.id });
  const servers: string[] = [];
  for (let i = 0; i < args.seed.servers; i++) {
    servers.push((await inventory.addServer({
      projectId: project.id, name: `echo-${i}`, console: { host: '127.0.0.1', port: args.seed.echoPort, auth: 'vnc-password', password: args.seed.backendPassword },
    })).id);
  }
  seeded = { projectId: project.id, ak: key.ak, sk: key.sk, servers };
}
const addrs = await app.start();
serveIpc({
  count: () => ({ open: app.proxy?.sessionCount ?? 0 }),
}, async () => {
  await app.stop();
  rmSync(args.dataDir, { recursive: true, force: true });
});
const ready: FleetChildReady = {
  ...(addrs.api ? { api: addrs.api.port } : {}), ...(addrs.proxy ? { proxy: addrs.proxy.port } : {}), ...(seeded ? { seeded } : {}),
};
announce({ ...ready });
