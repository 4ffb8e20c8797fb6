/**
 * Our service in its own process, as `ecs-console serve` runs it (API and console proxy in one
 * process, SQLite in a fresh data dir), so that its memory is measured alone. Seeds a
 * project, a user with an access key, and servers whose consoles are the bench backend's ports
 * with VNC authentication, then tells the runner what it made.
 *
 * Only the limits that would refuse the load are raised (rate limits off, session caps high,
 * no drain wait on exit); everything else is the default configuration.
 */
import { rmSync } from 'node:fs';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { BENCH_LIMITS } from './lib/bench-limits.js';
import { announce, childArgs, serveIpc } from './lib/child-ipc.js';

export interface ProxyChildArgs {
  /** A fresh directory for the SQLite database and master key (inside the run's temporary directory). */
  dataDir: string;
  echoPort: number;
  streamPort: number;
  backendPassword: string;
  logLevel: string;
  /** Servers made per backend port (tokens are spread over them). */
  serversPerPort: number;
  /** More VNC servers without a password (security None), by name: one server each. */
  extraPorts?: Record<string, number>;
  /** Servers with a serial port (and the echo backend as their VNC), by name: the serial address. */
  serialPorts?: Record<string, string>;
  /** Record every session of the project (a project recording policy). */
  recording?: boolean;
}

export interface ProxyChildReady {
  api: number;
  proxy: number;
  projectId: string;
  ak: string;
  sk: string;
  domain: string;
  user: string;
  password: string;
  echoServers: string[];
  streamServers: string[];
  /** Server id by name, for `extraPorts`. */
  extraServers: Record<string, string>;
  /** Server id by name, for `serialPorts`. */
  serialServers: Record<string, string>;
}

const args = childArgs<ProxyChildArgs>();
const dataDir = args.dataDir;
const config = loadConfig({
  flags: { dataDir, logLevel: args.logLevel, ...BENCH_LIMITS },
  env: {},
});
const app = await createApp(config, 'serve');
const { identity, inventory } = app.services;
const domain = 'bench';
const password = 'Bench-passw0rd';
const project = await identity.createProject({ name: 'bench-region', domain });
const user = await identity.createUser({ domain, name: 'bench', password });
const key = await identity.createAccessKey({ userId: user.id, projectId: project.id });
const servers = async (port: number, prefix: string): Promise<string[]> => {
  const ids: string[] = [];
  for (let i = 0; i < args.serversPerPort; i++) {
    const s = await inventory.addServer({
      projectId: project.id, name: `${prefix}-${i}`,
      console: { host: '127.0.0.1', port, auth: 'vnc-password', password: args.backendPassword },
    });
    ids.push(s.id);
  }
  return ids;
};
const echoServers = await servers(args.echoPort, 'echo');
const streamServers = await servers(args.streamPort, 'stream');
const extraServers: Record<string, string> = {};
for (const [name, port] of Object.entries(args.extraPorts ?? {})) {
  extraServers[name] = (await inventory.addServer({ projectId: project.id, name, console: { host: '127.0.0.1', port, auth: 'none', password: null } })).id;
}
const serialServers: Record<string, string> = {};
for (const [name, serial] of Object.entries(args.serialPorts ?? {})) {
  serialServers[name] = (await inventory.addServer({ projectId: project.id, name, console: { host: '127.0.0.1', port: args.echoPort, auth: 'vnc-password', password: args.backendPassword, serial } })).id;
}
if (args.recording) await app.services.recordings.setPolicy({ scope: 'project', scopeId: project.id, enabled: true });
const addrs = await app.start();

serveIpc({
  count: () => ({ open: app.proxy?.sessionCount ?? 0 }),
  // The recording worker's heap counts too (its own isolate: process.memoryUsage() does not see
  // it); 0 when nothing was recorded.
  gc: async () => {
    (globalThis as { gc?: () => void }).gc?.();
    await app.services.recordings.workerHeapUsed();
    return {};
  },
  mem: async () => {
    const m = process.memoryUsage();
    const worker = await app.services.recordings.workerHeapUsed();
    return { ...m, heapUsed: m.heapUsed + worker, workerHeapUsed: worker };
  },
  // What the recordings of this node hold: sealed bytes on disk (the store's index), and how many.
  'recording-bytes': async () => {
    const list = await app.services.recordings.list({ projectId: project.id, limit: 10_000 });
    return { recordings: list.length, bytes: list.reduce((n, r) => n + r.bytes, 0) };
  },
}, async () => {
  await app.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
const ready: ProxyChildReady = {
  serialServers,
  api: addrs.api!.port, proxy: addrs.proxy!.port, projectId: project.id, ak: key.ak, sk: key.sk,
  domain, user: 'bench', password, echoServers, streamServers, extraServers,
};
announce({ ...ready });
