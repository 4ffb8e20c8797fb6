/** Starts a real stack (API, later proxy) on 127.0.0.1:0 with a temporary data dir, and seeds it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createApp, type App, type AppOverrides, type Role } from '../../src/app.js';
import type { Clock } from '../../src/clock.js';
import { listenerUrl, loadConfig, type Config } from '../../src/config/config.js';
import { createLogger } from '../../src/log.js';
import type { Server } from '../../src/inventory/types.js';

/** Collects every log line a stack writes, to check that no secret is ever logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n')) if (l) this.lines.push(l);
    cb();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface StackOptions {
  role?: Role;
  /** Option values as the environment would give them (strings) or typed. */
  options?: Record<string, unknown>;
  clock?: Clock;
  dataDir?: string;
  overrides?: AppOverrides;
}

export interface Stack {
  app: App;
  config: Config;
  apiUrl: string;
  proxyUrl: string;
  dataDir: string;
  logs: LogCapture;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'ecs-console-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dataDir = opts.dataDir ?? tempDir();
  const ownDir = opts.dataDir === undefined;
  const config = loadConfig({
    flags: { dataDir, apiListen: '127.0.0.1:0', proxyListen: '127.0.0.1:0', logLevel: 'debug', ...opts.options },
    env: {},
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: config.logLevel, destination: logs });
  const app = await createApp(config, opts.role ?? 'serve', { logger, ...(opts.clock ? { clock: opts.clock } : {}), ...opts.overrides });
  const addrs = await app.start();
  return {
    app, config, dataDir, logs,
    apiUrl: addrs.api ? listenerUrl(config, 'api', addrs.api) : '',
    proxyUrl: addrs.proxy ? listenerUrl(config, 'proxy', addrs.proxy) : '',
    async stop() {
      await app.stop();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Seed {
  projectId: string;
  otherProjectId: string;
  domain: string;
  user: string;
  password: string;
  ak: string;
  sk: string;
  /** Key of the same user for the other project. */
  otherAk: string;
  otherSk: string;
  /** Key allowed only `ecs:cloudServers:get`. */
  limitedAk: string;
  limitedSk: string;
  active: Server;
  shutoff: Server;
  foreign: Server;
}

/** Creates a domain, two projects, a user with keys, and servers (ACTIVE, SHUTOFF, other project's). */
export async function seed(app: App, target: { host: string; port: number; auth?: 'none' | 'vnc-password'; password?: string } = { host: '127.0.0.1', port: 5900 }): Promise<Seed> {
  const { identity, inventory } = app.services;
  const domain = 'acme';
  const p1 = await identity.createProject({ name: 'cn-north-4', domain });
  const p2 = await identity.createProject({ name: 'cn-east-3', domain });
  const password = 'Secr3t-passw0rd';
  const user = await identity.createUser({ domain, name: 'alice', password });
  const k1 = await identity.createAccessKey({ userId: user.id, projectId: p1.id });
  const k2 = await identity.createAccessKey({ userId: user.id, projectId: p2.id });
  const k3 = await identity.createAccessKey({ userId: user.id, projectId: p1.id, actions: ['ecs:cloudServers:get'] });
  const console = { host: target.host, port: target.port, auth: target.auth ?? 'none', password: target.password ?? null } as const;
  const active = await inventory.addServer({ projectId: p1.id, name: 'web-01', console });
  const shutoff = await inventory.addServer({ projectId: p1.id, name: 'db-01', status: 'SHUTOFF', console });
  const foreign = await inventory.addServer({ projectId: p2.id, name: 'other-01', console });
  return {
    projectId: p1.id, otherProjectId: p2.id, domain, user: 'alice', password,
    ak: k1.ak, sk: k1.sk, otherAk: k2.ak, otherSk: k2.sk, limitedAk: k3.ak, limitedSk: k3.sk, active, shutoff, foreign,
  };
}
