/**
 * API: remote_console calls per second at 50 keep-alive connections.
 *
 * Primary (the goal): the Node load generator (api-load.ts, its own process), every request
 * AK/SK-signed afresh, against our API (signature verification, authorization, token insert and
 * audit row in SQLite) and against a bare node:http server answering the same JSON, in
 * alternating rounds. The generator reports its CPU use: near 100 % means it, not the server,
 * set the pace.
 *
 * Secondary: wrk (C, no signing possible in its LuaJIT) with an IAM token (X-Auth-Token) against
 * ours and the same request against the bare server: the servers' ceiling without a Node client.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiLoadArgs, ApiLoadResult } from '../api-load.js';
import { REMOTE_CONSOLE_BODY, iamToken, remoteConsolePath } from '../lib/api-client.js';
import { BENCH_DIR, startOurs } from '../lib/contenders.js';
import { cpuMs, forkChild, runToEnd, stopChild, waitFor } from '../lib/procs.js';
import { fmt, median, table } from '../lib/stats.js';
import { type Ctx, type Goal, type ScenarioResult, oursOptions, profiled, rotate } from './common.js';

const CONNECTIONS = 50;

interface Round extends ApiLoadResult {
  round: number;
  serverCpuUsPerRequest: number;
}

interface WrkRound {
  round: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

/** One run of the Node generator (its own process) against `args.port`. */
export async function nodeLoad(ctx: Ctx, args: ApiLoadArgs): Promise<ApiLoadResult> {
  const cp = forkChild(join(BENCH_DIR, 'api-load.js'), { args: [JSON.stringify(args)], logFile: join(ctx.logDir, 'api-load.log') });
  try {
    return await waitFor<ApiLoadResult>(cp, 'result', args.warmupMs + args.durationMs + 60_000);
  } finally {
    await stopChild(cp);
  }
}

function toMs(v: string, unit: string): number {
  const x = Number(v);
  return unit === 'us' ? x / 1000 : unit === 's' ? x * 1000 : unit === 'm' ? x * 60_000 : x;
}

/** Reads wrk's --latency report. */
export function parseWrk(out: string): Omit<WrkRound, 'round'> {
  const lat = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const non2xx = /^\s*Non-2xx or 3xx responses:\s+(\d+)/m.exec(out);
  return { rps: rps ? Number(rps[1]) : NaN, p50Ms: lat('50'), p99Ms: lat('99'), non2xx: non2xx ? Number(non2xx[1]) : 0 };
}

export async function apiScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const ours = await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'echo'));
  let bare: ChildProcess | null = null;
  try {
    bare = forkChild(join(BENCH_DIR, 'bare-http.js'), { logFile: join(ctx.logDir, 'bare-http.log') });
    const barePort = (await waitFor<{ port: number }>(bare, 'ready')).port;
    const i = ours.info;
    const path = remoteConsolePath(i.projectId, i.echoServers[0]!);
    const servers = [
      { name: 'ecs-console', port: i.api, pid: ours.pid! },
      { name: 'bare node:http', port: barePort, pid: bare.pid! },
    ];
    const nodeRounds = new Map<string, Round[]>(servers.map((s) => [s.name, []]));
    for (let r = 0; r < p.apiRounds; r++) {
      for (const s of rotate(servers, r)) {
        const cpu0 = cpuMs(s.pid);
        const args: ApiLoadArgs = { port: s.port, path, ak: i.ak, sk: i.sk, connections: CONNECTIONS, warmupMs: 1000, durationMs: p.apiSeconds * 1000 };
        const res = s.name === 'ecs-console' ? await profiled(ctx, ours, 'api', () => nodeLoad(ctx, args)) : await nodeLoad(ctx, args);
        const cpu1 = cpuMs(s.pid);
        // The server's CPU over warm-up and window, spread over the requests of the window: an estimate.
        const total = res.requests * (1 + 1000 / args.durationMs);
        nodeRounds.get(s.name)!.push({ ...res, round: r, serverCpuUsPerRequest: ((cpu1 - cpu0) * 1000) / total });
        ctx.progress(`api: round ${r + 1}: ${s.name}: ${fmt(res.rps)}/s, generator CPU ${fmt(res.generatorCpuPct)}%${res.errors ? `, ${res.errors} errors ${JSON.stringify(res.statuses)}` : ''}`);
      }
    }

    const token = await iamToken(i.api, i.domain, i.user, i.password, i.projectId);
    const script = join(ctx.logDir, 'remote-console.lua');
    // NOTE: the IAM token lives only in the temporary log directory, removed after the run.
    writeFileSync(script, [
      'wrk.method = "POST"',
      `wrk.body = '${REMOTE_CONSOLE_BODY}'`,
      'wrk.headers["Content-Type"] = "application/json"',
      `wrk.headers["X-Auth-Token"] = "${token}"`,
      '',
    ].join('\n'), { mode: 0o600 });
    const wrkRounds = new Map<string, WrkRound[]>(servers.map((s) => [s.name, []]));
    for (let r = 0; r < p.wrkRounds; r++) {
      for (const s of rotate(servers, r)) {
        const out = await runToEnd('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${p.wrkSeconds}s`, '--latency', '-s', script, `http://127.0.0.1:${s.port}${path}`], (p.wrkSeconds + 30) * 1000);
        const w = parseWrk(out);
        wrkRounds.get(s.name)!.push({ ...w, round: r });
        ctx.progress(`api: wrk round ${r + 1}: ${s.name}: ${fmt(w.rps)}/s${w.non2xx ? `, ${w.non2xx} non-2xx` : ''}`);
      }
    }

    const nm = (n: string, k: 'rps' | 'p50Ms' | 'p99Ms' | 'generatorCpuPct' | 'serverCpuUsPerRequest'): number => median(nodeRounds.get(n)!.map((x) => x[k]));
    const wm = (n: string, k: 'rps' | 'p50Ms' | 'p99Ms'): number => median(wrkRounds.get(n)!.map((x) => x[k]));
    const errors = (n: string): number => nodeRounds.get(n)!.reduce((a, x) => a + x.errors, 0);
    const non2xx = (n: string): number => wrkRounds.get(n)!.reduce((a, x) => a + x.non2xx, 0);
    const rows = [
      ...servers.map((s) => [`${s.name}, Node generator, AK/SK`, fmt(nm(s.name, 'rps')), fmt(nm(s.name, 'p50Ms'), 2), fmt(nm(s.name, 'p99Ms'), 2),
        fmt(nm(s.name, 'serverCpuUsPerRequest')), `${fmt(nm(s.name, 'generatorCpuPct'))}%`, String(errors(s.name))]),
      ...servers.map((s) => [`${s.name}, wrk, ${s.name === 'ecs-console' ? 'IAM token' : 'same request'}`, fmt(wm(s.name, 'rps')), fmt(wm(s.name, 'p50Ms'), 2), fmt(wm(s.name, 'p99Ms'), 2),
        '-', '-', String(non2xx(s.name))]),
    ];
    const text = table([`API remote_console (${CONNECTIONS} connections)`, 'requests/s', 'p50 ms', 'p99 ms', 'server CPU us/req', 'generator CPU', 'errors'], rows);
    const o = nm('ecs-console', 'rps');
    const b = nm('bare node:http', 'rps');
    const ow = wm('ecs-console', 'rps');
    const bw = wm('bare node:http', 'rps');
    const goals: Goal[] = [{
      scenario: 'api', goal: ">= 50% of the bare node:http server's rate (AK/SK, Node generator)",
      measured: `${fmt((o / b) * 100)}% (${fmt(o)} vs ${fmt(b)}/s; with wrk and an IAM token: ${fmt((ow / bw) * 100)}%, ${fmt(ow)} vs ${fmt(bw)}/s)`,
      met: o >= b * 0.5 && errors('ecs-console') === 0,
    }];
    return { name: 'api', text, goals, data: { connections: CONNECTIONS, node: Object.fromEntries(nodeRounds), wrk: Object.fromEntries(wrkRounds) } };
  } finally {
    await ours.stop();
    if (bare) await stopChild(bare);
  }
}
