/**
 * Real stacks for the fuzz targets that go over sockets: the API with its limits out of the way,
 * and the proxy with a demo VNC backend (the well-behaved peer) and a scripted hostile one.
 */
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { rmSync } from 'node:fs';
import { createServices, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { DemoVncServer } from '../../src/demo/index.js';
import { createLogger } from '../../src/log.js';
import type { Server } from '../../src/inventory/types.js';
import { closeOf, openConsole, openWs } from '../helpers/console-client.js';
import { drained } from '../helpers/hostile-vnc.js';
import type { RfbTransport } from '../helpers/rfb-test-client.js';
import type { WebSocket } from 'ws';
import { http } from '../helpers/signed-fetch.js';
import { seed, startStack, tempDir, type Seed, type Stack } from '../helpers/stack.js';
import { liveBytes, ProcessWatch, type BatchCheck } from './runner.js';

/** Log lines at level error or fatal: something the code did not expect. */
export function errorLogLines(stack: Stack): string[] {
  return stack.logs.lines.filter((l) => /"level":"(error|fatal)"/.test(l));
}

/** Forgets captured log lines (the capture would otherwise grow with every case). */
export function clearLogs(stack: Stack): void {
  stack.logs.lines.length = 0;
}

export async function assertHealthy(stack: Stack): Promise<void> {
  for (const base of [stack.apiUrl, stack.proxyUrl]) {
    if (!base) continue;
    const r = await http('GET', `${base}/healthz`);
    assert.equal(r.status, 200, `${base}/healthz answered ${r.status}`);
  }
}

/** The identity service over a fresh SQLite store (no sockets), with one access key. */
export interface SignerEnv {
  services: Services;
  ak: string;
  sk: string;
  stop(): Promise<void>;
}

/** Signature verification as the API does it, driven directly: lockout out of reach. */
export async function startSignerEnv(): Promise<SignerEnv> {
  const dataDir = tempDir('ecs-console-fuzz-signer-');
  const config = loadConfig({ flags: { dataDir, akLockThreshold: '1000' }, env: {} });
  const services = await createServices(config, { logger: createLogger({ level: 'silent' }) }, 'create');
  const project = await services.identity.createProject({ name: 'fuzz', domain: 'fuzz' });
  const user = await services.identity.createUser({ domain: 'fuzz', name: 'fuzz', password: 'fuzz-passw0rd' });
  const key = await services.identity.createAccessKey({ userId: user.id, projectId: project.id });
  return {
    services, ak: key.ak, sk: key.sk,
    async stop() {
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ApiEnv {
  stack: Stack;
  seed: Seed;
  /** A valid project-scoped IAM token of the seeded user. */
  iamToken: string;
  stop(): Promise<void>;
}

/**
 * The API with rate limits off and AK locking out of reach (every signature failure would
 * otherwise lock the seeded key for the fuzzer's address and hide the rest of the run behind 401s).
 */
export async function startApiEnv(): Promise<ApiEnv> {
  const stack = await startStack({
    role: 'api',
    options: { apiRateLimitPerAddress: '0', apiRateLimitPerCredential: '0', akLockThreshold: '1000', logLevel: 'warn' },
  });
  const s = await seed(stack.app);
  const r = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { name: s.user, password: s.password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } },
  }));
  assert.equal(r.status, 201, r.text);
  return { stack, seed: s, iamToken: String(r.headers['x-subject-token']), stop: () => stack.stop() };
}

/** 64 KiB of empty FramebufferUpdates (type 0, no rectangles): a valid flood for any client. */
const FLOOD_UNIT = Buffer.alloc(64 * 1024);

/**
 * A VNC server that plays whatever script the current case gives it: the bytes, in chunks, then
 * optionally a flood (as fast as its peer takes it), then it closes or falls silent. What the
 * proxy sends it is read and dropped.
 */
export class ScriptedBackend {
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();
  private script: { chunks: Buffer[]; close: boolean; closeDelayMs: number; floodBytes: number } = { chunks: [], close: true, closeDelayMs: 0, floodBytes: 0 };
  /** The current flood: bytes written so far, and whether it waits for its peer ('drain'). */
  readonly flood = { written: 0, waiting: false, done: false };
  /** What the latest connection received (its first MiB). */
  private lastReceived: Buffer[] = [];
  port = 0;

  constructor() {
    this.server = createServer((sock) => void this.play(sock));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** The script for the next connections: chunks, a flood of `floodBytes`, then a close (after a delay) or silence. */
  set(chunks: Buffer[], close: boolean, closeDelayMs = 0, floodBytes = 0): void {
    this.script = { chunks, close, closeDelayMs, floodBytes };
    Object.assign(this.flood, { written: 0, waiting: false, done: floodBytes === 0 });
  }

  /**
   * Resolves once the flood has been written, its peer has taken nothing for `stuckMs` (it holds
   * what it could), or `timeoutMs` passed.
   */
  async floodSettled(stuckMs: number, timeoutMs: number): Promise<void> {
    let last = -1;
    let since = Date.now();
    for (const end = Date.now() + timeoutMs; Date.now() < end && !this.flood.done; await sleep(10)) {
      if (this.flood.written !== last) {
        last = this.flood.written;
        since = Date.now();
      } else if (this.flood.waiting && Date.now() - since >= stuckMs) return;
    }
  }

  private async play(sock: Socket): Promise<void> {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    const got: Buffer[] = [];
    let kept = 0;
    this.lastReceived = got;
    sock.on('data', (d: Buffer) => {
      if (kept < 2 ** 20) got.push(d);
      kept += d.length;
    });
    const { chunks, close, closeDelayMs, floodBytes } = this.script;
    for (const c of chunks) {
      if (sock.destroyed) return;
      sock.write(c);
      // Separate writes so that the proxy sees the script's own splits, not one coalesced read.
      await tick();
    }
    for (let n = 0; n < floodBytes && !sock.destroyed; n += FLOOD_UNIT.length) {
      this.flood.written += FLOOD_UNIT.length;
      if (!sock.write(FLOOD_UNIT)) {
        this.flood.waiting = true;
        await drained(sock);
        this.flood.waiting = false;
      }
    }
    this.flood.done = true;
    if (!close) return;
    if (closeDelayMs > 0) await sleep(closeDelayMs);
    sock.end();
  }

  /** What the latest connection received from the proxy (its first MiB). */
  received(): Buffer {
    return Buffer.concat(this.lastReceived);
  }

  /** Drops every connection still open (a silent script keeps its socket until then). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface ProxyEnv {
  stack: Stack;
  seed: Seed;
  demo: DemoVncServer;
  scripted: ScriptedBackend;
  /** Servers whose console is the scripted backend: without a VNC password, and with one. */
  scriptedServer: Server;
  scriptedServerWithPassword: Server;
  /** The proxy's handshake timeout. */
  handshakeTimeoutMs: number;
  stop(): Promise<void>;
}

export const DEMO_PASSWORD = 'demo-pw';
export const SCRIPTED_PASSWORD = 'scripted';

/**
 * The whole stack (API and proxy) with a 2 s handshake timeout and session caps out of the way,
 * the seeded ACTIVE server on the demo VNC server (VNC authentication), and two servers on the
 * scripted backend.
 */
export async function startProxyEnv(extraOptions: Record<string, string> = {}): Promise<ProxyEnv> {
  const demo = new DemoVncServer({ name: 'demo-name-never-shown', password: DEMO_PASSWORD, width: 320, height: 200, blinkIntervalMs: 60_000 });
  const { port } = await demo.listen(0, '127.0.0.1');
  const scripted = new ScriptedBackend();
  const scriptedPort = await scripted.listen();
  const handshakeTimeoutMs = 2000;
  const stack = await startStack({
    options: {
      proxyHandshakeTimeoutSeconds: String(handshakeTimeoutMs / 1000), proxyBackendConnectTimeoutSeconds: '2',
      proxyMaxSessionsPerServer: '10000', proxyMaxSessionsPerProject: '10000', proxyFailedTokenLimitPerMinute: '1000000',
      apiRateLimitPerAddress: '0', apiRateLimitPerCredential: '0', logLevel: 'warn', ...extraOptions,
    },
  });
  const s = await seed(stack.app, { host: '127.0.0.1', port, auth: 'vnc-password', password: DEMO_PASSWORD });
  const { inventory } = stack.app.services;
  const scriptedServer = await inventory.addServer({ projectId: s.projectId, name: 'scripted-01', console: { host: '127.0.0.1', port: scriptedPort, auth: 'none', password: null } });
  const scriptedServerWithPassword = await inventory.addServer({
    projectId: s.projectId, name: 'scripted-02', console: { host: '127.0.0.1', port: scriptedPort, auth: 'vnc-password', password: SCRIPTED_PASSWORD },
  });
  return {
    stack, seed: s, demo, scripted, scriptedServer, scriptedServerWithPassword, handshakeTimeoutMs,
    async stop() {
      await stack.stop();
      await scripted.close();
      await demo.close();
    },
  };
}

/** A console WebSocket opened with a fresh token for `server`, as the console page opens it. */
export async function openSession(env: ProxyEnv, server: Server): Promise<{ ws: WebSocket; transport: RfbTransport; closed: Promise<{ code: number; reason: string }> }> {
  const { token } = await env.stack.app.services.consoleTokens.issue(server);
  const r = await openWs(`${env.stack.proxyUrl.replace(/^http/, 'ws')}/websockify?token=${token}`);
  assert.ok(r.ok, `a valid token was refused: ${!r.ok ? `${r.status} ${r.body}` : ''}`);
  return { ws: r.ws, transport: r.transport, closed: closeOf(r.ws) };
}

/** Waits until the proxy holds no session (a closed socket must not leave one behind). */
export async function sessionsDrained(env: ProxyEnv): Promise<void> {
  for (let i = 0; i < 300 && env.stack.app.proxy!.sessionCount > 0; i++) await sleep(10);
  assert.equal(env.stack.app.proxy!.sessionCount, 0, 'sessions left behind after their sockets closed');
}

/**
 * What must hold between batches of hostile sessions: nothing went unhandled, no session is left,
 * both servers answer, another console on the demo backend works end to end, and live memory
 * stays within 64 MiB of what it was after the first batch (which warms caches up).
 */
export function proxyBetweenBatches(env: ProxyEnv, watch: ProcessWatch, everyCases: number): BatchCheck {
  let baseline: number | undefined;
  let last: number | undefined;
  let most = 0;
  let batches = 0;
  const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return {
    everyCases,
    notes: (): Record<string, string | number> => (baseline === undefined || last === undefined ? {} : {
      'live memory after batch 1': mib(baseline), 'after the last': mib(last), 'largest growth': mib(most), batches,
    }),
    async check() {
      watch.assertQuiet();
      await sessionsDrained(env);
      await assertHealthy(env.stack);
      const { token } = await env.stack.app.services.consoleTokens.issue(env.seed.active);
      const con = await openConsole(`${env.stack.proxyUrl}/vnc_auto.html?token=${token}`);
      await con.client.waitUntil(() => con.client.updateCount > 0);
      assert.equal(con.client.name, env.seed.active.name);
      con.ws.close();
      await con.closed;
      await sessionsDrained(env);
      const now = liveBytes();
      baseline ??= now;
      last = now;
      most = Math.max(most, now - baseline);
      batches++;
      assert.ok(now - baseline < 64 * 1024 * 1024, `live memory grew by ${((now - baseline) / 2 ** 20).toFixed(1)} MiB after ${batches} batches`);
    },
  };
}
