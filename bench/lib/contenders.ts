/**
 * The contenders, each behind the same small interface: how to open session i, how many sessions
 * it holds, which processes to measure, how to stop it. All relay to the same bench backend.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProxyChildArgs, ProxyChildReady } from '../proxy-child.js';
import { issueTokens } from './api-client.js';
import { ask, forkChild, processTree, spawnChild, stopChild, waitFor } from './procs.js';
import type { Target } from './rfb-session.js';

/** Compiled bench scripts live next to this folder (dist/bench/). */
export const BENCH_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** The backend's VNC password (RFC 6143 7.2.2: 8 bytes at most). */
export const BACKEND_PASSWORD = 'b3nch-pw';

export type ContenderName = 'ecs-console' | 'ecs-console, recording' | 'ws relay' | 'websockify' | 'direct TCP';

export interface Contender {
  readonly name: ContenderName;
  /** Main process to measure (null for direct TCP). */
  readonly pid: number | null;
  /** Gets `n` more sessions ready to open (ours: issues tokens through the API beforehand). */
  prepare(n: number): Promise<void>;
  /** Where the next session goes. */
  next(): Target;
  /** Sessions the contender holds (websockify: forked handler processes). */
  sessions(): Promise<number>;
  /** Node contenders: full GC before a memory reading. */
  gc(): Promise<void>;
  /** Node contenders: process.memoryUsage() of the child. */
  memory?(): Promise<NodeJS.MemoryUsage>;
  /** Node contenders: a command to the child (see lib/child-ipc.ts). */
  ipc?(msg: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface Backend {
  readonly cp: ChildProcess;
  readonly echoPort: number;
  readonly streamPort: number;
  sessions(): Promise<number>;
  stop(): Promise<void>;
}

export async function startBackend(logDir: string): Promise<Backend> {
  const cp = forkChild(join(BENCH_DIR, 'backend.js'), { args: [JSON.stringify({ password: BACKEND_PASSWORD })], logFile: join(logDir, 'backend.log') });
  const r = await waitFor<{ echoPort: number; streamPort: number }>(cp, 'ready');
  return {
    cp, echoPort: r.echoPort, streamPort: r.streamPort,
    sessions: async () => (await ask<{ open: number }>(cp, { cmd: 'count' })).open,
    stop: () => stopChild(cp),
  };
}

function nodeContender(name: ContenderName, cp: ChildProcess, target: () => Target, prepare: (n: number) => Promise<void> = async () => {}): Contender {
  return {
    name, pid: cp.pid ?? null, prepare, next: target,
    sessions: async () => (await ask<{ open: number }>(cp, { cmd: 'count' })).open,
    gc: async () => void (await ask(cp, { cmd: 'gc' })),
    memory: () => ask<NodeJS.MemoryUsage>(cp, { cmd: 'mem' }),
    ipc: (msg, timeoutMs) => ask(cp, msg, timeoutMs),
    stop: () => stopChild(cp, 5000),
  };
}

export interface Ours extends Contender {
  readonly cp: ChildProcess;
  readonly info: ProxyChildReady;
}

export interface OursOptions {
  logLevel: string;
  /** Extra node flags for the child (profiling). */
  execArgv?: string[];
  mode: 'echo' | 'stream';
  /** More VNC servers (security None) to seed, by name: see ProxyChildArgs.extraPorts. */
  extraPorts?: Record<string, number>;
  /** Servers with a serial port, by name: see ProxyChildArgs.serialPorts. */
  serialPorts?: Record<string, string>;
  /** Every session recorded (named `ecs-console, recording`). */
  recording?: boolean;
}

/** Our service (`serve`: API + proxy) in a child process; sessions use tokens issued through the API. */
export async function startOurs(logDir: string, backend: Backend, o: OursOptions): Promise<Ours> {
  const args: ProxyChildArgs = {
    dataDir: mkdtempSync(join(logDir, 'data-')),
    echoPort: backend.echoPort, streamPort: backend.streamPort, backendPassword: BACKEND_PASSWORD, logLevel: o.logLevel, serversPerPort: 10,
    ...(o.extraPorts ? { extraPorts: o.extraPorts } : {}),
    ...(o.serialPorts ? { serialPorts: o.serialPorts } : {}),
    ...(o.recording ? { recording: true } : {}),
  };
  const cp = forkChild(join(BENCH_DIR, 'proxy-child.js'), {
    args: [JSON.stringify(args)], logFile: join(logDir, o.recording ? 'ecs-console-recording.log' : 'ecs-console.log'), execArgv: ['--expose-gc', '--initial-old-space-size=64', ...(o.execArgv ?? [])],
  });
  const info = await waitFor<ProxyChildReady>(cp, 'ready');
  const servers = o.mode === 'echo' ? info.echoServers : info.streamServers;
  const tokens: string[] = [];
  const origin = `http://127.0.0.1:${info.proxy}`;
  const base = nodeContender(o.recording ? 'ecs-console, recording' : 'ecs-console', cp, () => {
    const token = tokens.shift();
    if (token === undefined) throw new Error('no console token left: prepare() more');
    return { kind: 'ws', url: `ws://127.0.0.1:${info.proxy}/websockify?token=${token}`, origin };
  }, async (n) => {
    tokens.push(...(await issueTokens(info.api, info.projectId, servers, info, n)));
  });
  return { ...base, cp, info };
}

export async function startRelay(logDir: string, targetPort: number): Promise<Contender> {
  const cp = forkChild(join(BENCH_DIR, 'ws-relay.js'), {
    args: [JSON.stringify({ targetPort })], logFile: join(logDir, 'ws-relay.log'), execArgv: ['--expose-gc'],
  });
  const { port } = await waitFor<{ port: number }>(cp, 'ready');
  return nodeContender('ws relay', cp, () => ({ kind: 'ws', url: `ws://127.0.0.1:${port}/`, origin: `http://127.0.0.1:${port}`, password: BACKEND_PASSWORD }));
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Debian's websockify 0.10, default options (it forks a handler process per connection). */
export async function startWebsockify(logDir: string, targetPort: number): Promise<Contender> {
  const port = await freePort();
  const cp = spawnChild('/usr/bin/websockify', [`127.0.0.1:${port}`, `127.0.0.1:${targetPort}`], join(logDir, 'websockify.log'));
  await waitListening(port, 10_000);
  const pid = cp.pid!;
  return {
    name: 'websockify', pid, prepare: async () => {},
    next: () => ({ kind: 'ws', url: `ws://127.0.0.1:${port}/`, origin: `http://127.0.0.1:${port}`, password: BACKEND_PASSWORD }),
    // The probe above also forked a handler; it exits on its own once it sees the close.
    sessions: async () => processTree(pid).length - 1,
    gc: async () => {},
    stop: () => stopChild(cp, 3000),
  };
}

export function direct(targetPort: number, backend: Backend): Contender {
  return {
    name: 'direct TCP', pid: null, prepare: async () => {},
    next: () => ({ kind: 'tcp', port: targetPort, password: BACKEND_PASSWORD }),
    sessions: () => backend.sessions(),
    gc: async () => {},
    stop: async () => {},
  };
}
