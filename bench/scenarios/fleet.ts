/**
 * The fleet: two `ecs-console api` and two `ecs-console proxy` processes on one real PostgreSQL
 * (a database created for the run, dropped after), as docs/deploy.md deploys them, on this
 * machine beside the runner, the bench backend and PostgreSQL itself.
 *
 * - Session setup: tokens issued through both API nodes beforehand (AK/SK-signed remote_console,
 *   not timed); sessions opened 50 at a time, alternately through each proxy, from the WebSocket
 *   connect to ServerInit (token consumed in PostgreSQL, server re-checked, backend connect and
 *   VNC authentication by the proxy). Goal: >= 1,000 sessions/s for the fleet.
 * - API: the Node generator of the API row (AK/SK signed afresh, 50 keep-alive connections)
 *   against one SQLite node (`serve`, as the API row), then against each PostgreSQL API node
 *   alone, then against both at once (one generator each). Goal: per API node >= 60% of the
 *   SQLite node's rate.
 * - The session registry's heartbeat: what one proxy node writes every sessionHeartbeatSeconds
 *   with 10,000 and 100,000 live sessions (the write load that grows with concurrent consoles).
 *
 * PostgreSQL: ECS_CONSOLE_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresStores } from '../../src/store/postgres/postgres-stores.js';
import type { SessionRecord } from '../../src/sessions/types.js';
import type { FleetChildArgs, FleetChildReady } from '../fleet-child.js';
import { issueTokens, remoteConsolePath } from '../lib/api-client.js';
import { BACKEND_PASSWORD, BENCH_DIR, type Contender, startOurs } from '../lib/contenders.js';
import { ask, cpuMs, forkChild, stopChild, waitFor } from '../lib/procs.js';
import type { Target } from '../lib/rfb-session.js';
import { fmt, median, percentile, sleep, table } from '../lib/stats.js';
import { nodeLoad } from './api.js';
import { type Ctx, type Goal, type ScenarioResult, closeAll, openMany, oursOptions } from './common.js';

const CONNECTIONS = 50;
const SERVERS = 20;
/** Live sessions of one proxy node whose heartbeat is timed (the session registry's write load). */
const HEARTBEAT_SIZES = [10_000, 100_000];

/**
 * What one proxy node's heartbeat costs PostgreSQL with `n` live sessions: the first write of its
 * live set (syncSessions), then the periodic refresh (touchSessions: every row's heartbeat and
 * traffic counters). Rows of a made-up node in the run's database, deleted after.
 */
async function heartbeat(store: string, n: number): Promise<{ syncMs: number; touchMs: number }> {
  const stores = await openPostgresStores(store);
  try {
    const owner = { nodeId: `bench-heartbeat-${n}`, instanceId: randomBytes(8).toString('hex') };
    const now = Date.now();
    const live: SessionRecord[] = Array.from({ length: n }, (_, i) => ({
      id: `${owner.instanceId}-${i}`, ...owner, serverId: `server-${i % 1000}`, projectId: 'p', tokenRef: 'abcdef01', clientAddress: '10.0.0.1',
      startedAt: now, heartbeatAt: now, userId: null, credential: null, bytesToClient: i, bytesToBackend: i,
    }));
    let t0 = performance.now();
    await stores.sessions.syncSessions(owner, live, now, true);
    const syncMs = performance.now() - t0;
    t0 = performance.now();
    await stores.sessions.touchSessions(owner, now + 15_000, live.map((l) => ({ id: l.id, bytesToClient: l.bytesToClient! + 1, bytesToBackend: l.bytesToBackend! + 1 })));
    const touchMs = performance.now() - t0;
    await stores.sessions.syncSessions(owner, [], now, true);
    return { syncMs, touchMs };
  } finally {
    await stores.close();
  }
}

/** CPU (ms) of the PostgreSQL backends serving the run's database now (the server's own work for the fleet). */
async function postgresCpuMs(admin: pg.Client, dbName: string): Promise<Map<number, number>> {
  const r = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName]);
  return new Map(r.rows.map((x) => [x.pid, cpuMs(x.pid)]));
}

/** CPU the backends spent between two readings (a backend that appeared in between counts from 0; one that ended is lost). */
function cpuSpent(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, c] of after) ms += c - (before.get(pid) ?? 0);
  return ms;
}

interface Node {
  name: string;
  cp: ChildProcess;
  ready: FleetChildReady;
}

async function startNode(ctx: Ctx, a: FleetChildArgs): Promise<Node> {
  // --profile: a CPU profile of each node over its whole life, written when it exits.
  const prof = ctx.profileDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.profileDir, '--cpu-prof-name', `fleet-${a.nodeId}.cpuprofile`] : [];
  const cp = forkChild(join(BENCH_DIR, 'fleet-child.js'), {
    args: [JSON.stringify(a)], logFile: join(ctx.logDir, `fleet-${a.nodeId}.log`), execArgv: ['--initial-old-space-size=64', ...prof, ...ctx.nodeFlags],
  });
  const ready = await waitFor<FleetChildReady>(cp, 'ready', 60_000);
  return { name: a.nodeId, cp, ready };
}

/** The fleet as one contender: tokens from both API nodes, sessions alternately through both proxies. */
function fleetContender(apis: Node[], proxies: Node[], seeded: NonNullable<FleetChildReady['seeded']>): Contender {
  const tokens: string[] = [];
  let i = 0;
  return {
    name: 'ecs-console', pid: null,
    async prepare(n) {
      const half = Math.ceil(n / 2);
      const got = await Promise.all(apis.map((a, k) => issueTokens(a.ready.api!, seeded.projectId, seeded.servers, seeded, k === 0 ? half : n - half)));
      // Interleaved: each proxy gets tokens of both API nodes.
      for (let k = 0; k < half; k++) for (const g of got) if (g[k] !== undefined) tokens.push(g[k]!);
    },
    next(): Target {
      const token = tokens.shift();
      if (token === undefined) throw new Error('no console token left: prepare() more');
      const port = proxies[i++ % proxies.length]!.ready.proxy!;
      return { kind: 'ws', url: `ws://127.0.0.1:${port}/websockify?token=${token}`, origin: `http://127.0.0.1:${port}` };
    },
    sessions: async () => {
      let n = 0;
      for (const p of proxies) n += (await ask<{ open: number }>(p.cp, { cmd: 'count' })).open;
      return n;
    },
    gc: async () => {},
    stop: async () => {},
  };
}

export async function fleetScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const pgUrl = process.env['ECS_CONSOLE_BENCH_POSTGRES'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const dbName = `bench_fleet_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const store = pgUrl.replace(/\/[^/]*$/, `/${dbName}`);
  const masterKey = randomBytes(32).toString('base64');
  const nodes: Node[] = [];
  const single = await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'echo'));
  try {
    const base = (role: 'api' | 'proxy', nodeId: string): FleetChildArgs => ({
      dataDir: mkdtempSync(join(ctx.logDir, `fleet-${nodeId}-`)), store, masterKey, role, nodeId, logLevel: ctx.logLevel,
    });
    // The first API node creates the schema and seeds; the others start once it is there.
    nodes.push(await startNode(ctx, { ...base('api', 'api-1'), seed: { echoPort: ctx.backend.echoPort, backendPassword: BACKEND_PASSWORD, servers: SERVERS } }));
    nodes.push(...(await Promise.all([startNode(ctx, base('api', 'api-2')), startNode(ctx, base('proxy', 'proxy-1')), startNode(ctx, base('proxy', 'proxy-2'))])));
    const seeded = nodes[0]!.ready.seeded!;
    const apis = nodes.filter((n) => n.ready.api !== undefined);
    const proxies = nodes.filter((n) => n.ready.proxy !== undefined);
    ctx.progress(`fleet: 2 API + 2 proxy nodes on PostgreSQL (${dbName}) up`);

    // ---- API: the SQLite node, each PostgreSQL API node alone, both at once (rounds alternate).
    const load = (port: number, projectId: string, server: string, creds: { ak: string; sk: string }) => nodeLoad(ctx, {
      port, path: remoteConsolePath(projectId, server), ak: creds.ak, sk: creds.sk, connections: CONNECTIONS, warmupMs: 1000, durationMs: p.apiSeconds * 1000,
    });
    const apiRounds: Record<string, number[]> = { sqlite: [], 'api-1 alone': [], 'api-2 alone': [], 'both: api-1': [], 'both: api-2': [] };
    const apiErrors: Record<string, number> = {};
    const cpuPerReq: Record<string, number[]> = { sqlite: [], 'api-1 alone': [], 'api-2 alone': [] };
    const note = (k: string, r: { rps: number; errors: number }): void => {
      apiRounds[k]!.push(r.rps);
      apiErrors[k] = (apiErrors[k] ?? 0) + r.errors;
    };
    const rounds = Math.max(1, p.apiRounds - 1);
    for (let r = 0; r < rounds; r++) {
      const steps: Array<[string, () => Promise<void>]> = [
        ['sqlite', async () => {
          const c0 = cpuMs(single.pid!);
          const res = await load(single.info.api, single.info.projectId, single.info.echoServers[0]!, single.info);
          cpuPerReq['sqlite']!.push(((cpuMs(single.pid!) - c0) * 1000) / (res.requests * (1 + 1000 / (p.apiSeconds * 1000))));
          note('sqlite', res);
        }],
        ...apis.map((a) => [`${a.name} alone`, async () => {
          const c0 = cpuMs(a.cp.pid!);
          const res = await load(a.ready.api!, seeded.projectId, seeded.servers[0]!, seeded);
          cpuPerReq[`${a.name} alone`]!.push(((cpuMs(a.cp.pid!) - c0) * 1000) / (res.requests * (1 + 1000 / (p.apiSeconds * 1000))));
          note(`${a.name} alone`, res);
        }] as [string, () => Promise<void>]),
        ['both', async () => {
          const res = await Promise.all(apis.map((a) => load(a.ready.api!, seeded.projectId, seeded.servers[0]!, seeded)));
          res.forEach((x, k) => note(`both: ${apis[k]!.name}`, x));
        }],
      ];
      for (const [name, run] of r % 2 ? [...steps].reverse() : steps) {
        await run();
        ctx.progress(`fleet: API round ${r + 1}: ${name}: ${Object.entries(apiRounds).filter(([k]) => k === name || k.startsWith(`${name}:`)).map(([k, v]) => `${k} ${fmt(v.at(-1)!)}/s`).join(', ')}`);
      }
    }

    // ---- Session setup across both proxies.
    const fleet = fleetContender(apis, proxies, seeded);
    await fleet.prepare(200);
    const warm = await openMany(fleet, 200, p.setupConcurrency);
    if (warm.failures) throw new Error(`fleet: warm-up failed: ${warm.firstError}`);
    await closeAll(fleet, warm.sessions);
    await single.prepare(200);
    const warmSingle = await openMany(single, 200, p.setupConcurrency);
    await closeAll(single, warmSingle.sessions);
    const setup: Array<{ perSec: number; p50Ms: number; p99Ms: number; failures: number; cpuMsPerSession: number; pgCpuMsPerSession: number }> = [];
    // The same plan against the one SQLite node, alternating: the machine's load at that moment.
    const singleSetup: Array<{ perSec: number; p50Ms: number; p99Ms: number; failures: number; cpuMsPerSession: number }> = [];
    const singleRound = async (): Promise<void> => {
      await single.prepare(p.setupSessions);
      await sleep(500);
      const c0 = cpuMs(single.pid!);
      const o = await openMany(single, p.setupSessions, p.setupConcurrency);
      const perSec = o.sessions.length / (o.elapsedMs / 1000);
      await closeAll(single, o.sessions);
      singleSetup.push({ perSec, p50Ms: percentile(o.latenciesMs, 50), p99Ms: percentile(o.latenciesMs, 99), failures: o.failures, cpuMsPerSession: (cpuMs(single.pid!) - c0) / p.setupSessions });
      ctx.progress(`fleet: setup round: one SQLite node: ${fmt(perSec)}/s`);
    };
    for (let r = 0; r < p.setupRounds; r++) {
      if (r % 2 === 0) await singleRound();
      await fleet.prepare(p.setupSessions);
      await sleep(500);
      const pids = [...proxies.map((x) => x.cp.pid!)];
      const c0 = pids.reduce((a, x) => a + cpuMs(x), 0);
      const pg0 = await postgresCpuMs(admin, dbName);
      const o = await openMany(fleet, p.setupSessions, p.setupConcurrency);
      const perSec = o.sessions.length / (o.elapsedMs / 1000);
      await closeAll(fleet, o.sessions);
      const c1 = pids.reduce((a, x) => a + cpuMs(x), 0);
      const pgMs = cpuSpent(pg0, await postgresCpuMs(admin, dbName));
      setup.push({
        perSec, p50Ms: percentile(o.latenciesMs, 50), p99Ms: percentile(o.latenciesMs, 99), failures: o.failures, cpuMsPerSession: (c1 - c0) / p.setupSessions,
        pgCpuMsPerSession: pgMs / p.setupSessions,
      });
      ctx.progress(`fleet: setup round ${r + 1}: ${fmt(perSec)}/s${o.failures ? `, ${o.failures} failed: ${o.firstError}` : ''}`);
      await sleep(300);
      if (r % 2 === 1) await singleRound();
    }

    // ---- The session registry's heartbeat at scale (what one proxy node writes every sessionHeartbeatSeconds).
    // A heartbeat that fails (the statement timeout on a busy machine) is shown as failed, not the scenario's other figures lost.
    const beats: Array<{ sessions: number; syncMs: number; touchMs: number; failed?: string }> = [];
    for (const n of p.quick ? [HEARTBEAT_SIZES[0]!] : HEARTBEAT_SIZES) {
      try {
        beats.push({ sessions: n, ...(await heartbeat(store, n)) });
        ctx.progress(`fleet: heartbeat of ${n} sessions: ${fmt(beats.at(-1)!.touchMs)} ms`);
      } catch (e) {
        beats.push({ sessions: n, syncMs: NaN, touchMs: NaN, failed: e instanceof Error ? e.message : String(e) });
        ctx.progress(`fleet: heartbeat of ${n} sessions failed: ${beats.at(-1)!.failed}`);
      }
    }

    const m = (k: string): number => median(apiRounds[k]!);
    const sqlite = m('sqlite');
    const alone = (m('api-1 alone') + m('api-2 alone')) / 2;
    const both = m('both: api-1') + m('both: api-2');
    const apiText = table(['API remote_console, AK/SK, Node generator (50 connections each)', 'requests/s', 'vs SQLite node', 'server CPU us/req', 'errors'], [
      ['one SQLite node (serve)', fmt(sqlite), '1.00x', fmt(median(cpuPerReq['sqlite']!)), String(apiErrors['sqlite'] ?? 0)],
      ...apis.map((a) => [`${a.name} (PostgreSQL) alone`, fmt(m(`${a.name} alone`)), `${fmt(m(`${a.name} alone`) / sqlite, 2)}x`, fmt(median(cpuPerReq[`${a.name} alone`]!)), String(apiErrors[`${a.name} alone`] ?? 0)]),
      ...apis.map((a) => [`${a.name}, both loaded at once`, fmt(m(`both: ${a.name}`)), `${fmt(m(`both: ${a.name}`) / sqlite, 2)}x`, '-', String(apiErrors[`both: ${a.name}`] ?? 0)]),
      ['both API nodes at once, sum', fmt(both), `${fmt(both / sqlite, 2)}x`, '-', '-'],
    ]);
    const sm = (k: 'perSec' | 'p50Ms' | 'p99Ms' | 'cpuMsPerSession', of: ReadonlyArray<Record<typeof k, number>> = setup): number => median(of.map((x) => x[k]));
    const setupFailures = setup.reduce((a, x) => a + x.failures, 0);
    const setupText = table([`Fleet session setup (2 proxies, ${p.setupConcurrency} at a time)`, 'sessions/s', 'p50 ms', 'p99 ms', 'proxy CPU ms/session', 'PostgreSQL CPU ms/session', 'failed'], [
      ['2 API + 2 proxy nodes, PostgreSQL', fmt(sm('perSec')), fmt(sm('p50Ms'), 1), fmt(sm('p99Ms'), 1), fmt(sm('cpuMsPerSession'), 2),
        fmt(median(setup.map((x) => x.pgCpuMsPerSession)), 2), String(setupFailures)],
      ['one SQLite node (serve), same run', fmt(sm('perSec', singleSetup)), fmt(sm('p50Ms', singleSetup), 1), fmt(sm('p99Ms', singleSetup), 1), fmt(sm('cpuMsPerSession', singleSetup), 2), '-',
        String(singleSetup.reduce((a, x) => a + x.failures, 0))],
    ]);
    const beatText = table(['Session registry heartbeat of one proxy node (PostgreSQL)', 'first write of the live set, ms', 'refresh (heartbeat and traffic), ms', 'rows/s refreshed'],
      beats.map((b) => b.failed
        ? [`${fmt(b.sessions)} live sessions`, `failed: ${b.failed}`, '-', '-']
        : [`${fmt(b.sessions)} live sessions`, fmt(b.syncMs), fmt(b.touchMs), fmt(b.sessions / (b.touchMs / 1000))]));
    const apiErrorsTotal = Object.values(apiErrors).reduce((a, x) => a + x, 0);
    const goals: Goal[] = [
      {
        scenario: 'fleet', goal: 'setup >= 1,000 sessions/s for the fleet (2 API + 2 proxy nodes, PostgreSQL)',
        measured: `${fmt(sm('perSec'))}/s${setupFailures ? `, ${setupFailures} failed` : ''} (one SQLite node in the same run: ${fmt(sm('perSec', singleSetup))}/s)`, met: sm('perSec') >= 1000 && setupFailures === 0,
      },
      {
        // A node's rate is measured with the machine to itself, as the SQLite node's is: both at once
        // share the 2 cores that one node had alone (their sum is shown, not judged).
        scenario: 'fleet', goal: 'API: per API node (PostgreSQL) >= 60% of one SQLite node',
        measured: `${fmt((alone / sqlite) * 100)}% (each node alone: ${fmt(alone)} vs ${fmt(sqlite)}/s); both at once on these 2 cores: ${fmt(both)}/s in all, ${fmt((both / sqlite) * 100)}% of one SQLite node`,
        met: alone >= sqlite * 0.6 && apiErrorsTotal === 0,
      },
    ];
    return { name: 'fleet', text: `${apiText}\n\n${setupText}\n\n${beatText}`, goals, data: { apiRounds, apiErrors, cpuPerReq, setup, singleSetup, heartbeat: beats, database: dbName } };
  } finally {
    await Promise.all(nodes.map((n) => stopChild(n.cp, 5000)));
    await single.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}
