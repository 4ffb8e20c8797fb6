/**
 * Password logins under a flood of bad ones: how long a good user's login (POST /v3/auth/tokens,
 * one scrypt) takes, alone and while a flood of bad logins runs in another process, from one
 * address (100 connections) and from 50 addresses (2 connections each). The good user logs in
 * from its own address (127.0.0.2), one login after the other, for the phase's duration.
 */
import { Agent } from 'node:http';
import { join } from 'node:path';
import type { LoginFloodArgs } from '../login-flood.js';
import { loginBody, post } from '../lib/api-client.js';
import { BENCH_DIR, startOurs, type Ours } from '../lib/contenders.js';
import { ask, forkChild, stopChild, waitFor } from '../lib/procs.js';
import { fmt, percentile, sleep, table } from '../lib/stats.js';
import { type Ctx, type Goal, type ScenarioResult, oursOptions } from './common.js';

const GOOD_ADDRESS = '127.0.0.2';

interface Phase {
  name: string;
  /** The flood's source addresses (none: no flood). */
  addresses: string[];
  perAddress: number;
}

interface PhaseResult {
  phase: string;
  goodLatenciesMs: number[];
  goodStatuses: Record<string, number>;
  flood: { requests: number; seconds: number; statuses: Record<string, number> } | null;
}

const PHASES: Phase[] = [
  { name: 'no flood', addresses: [], perAddress: 0 },
  { name: 'flood from 1 address, 100 connections', addresses: ['127.0.0.1'], perAddress: 100 },
  { name: 'flood from 50 addresses, 2 connections each', addresses: Array.from({ length: 50 }, (_, i) => `127.0.1.${i + 1}`), perAddress: 2 },
];

/** The good user's logins, back to back, for `ms` (at most `max` of them). */
async function goodLogins(ours: Ours, ms: number, max: number): Promise<Pick<PhaseResult, 'goodLatenciesMs' | 'goodStatuses'>> {
  const i = ours.info;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = loginBody(i.domain, i.user, i.password, i.projectId);
  const goodLatenciesMs: number[] = [];
  const goodStatuses: Record<string, number> = {};
  const end = performance.now() + ms;
  try {
    while (performance.now() < end && goodLatenciesMs.length < max) {
      const t0 = performance.now();
      const r = await post(agent, i.api, '/v3/auth/tokens', body, null, {}, GOOD_ADDRESS);
      goodLatenciesMs.push(performance.now() - t0);
      goodStatuses[r.status] = (goodStatuses[r.status] ?? 0) + 1;
    }
  } finally {
    agent.destroy();
  }
  return { goodLatenciesMs, goodStatuses };
}

async function runPhase(ctx: Ctx, ours: Ours, p: Phase): Promise<PhaseResult> {
  const seconds = ctx.plan.loginSeconds;
  if (p.addresses.length === 0) return { phase: p.name, ...(await goodLogins(ours, seconds * 1000, ctx.plan.loginMaxSamples)), flood: null };
  const args: LoginFloodArgs = { port: ours.info.api, domain: ours.info.domain, projectId: ours.info.projectId, addresses: p.addresses, perAddress: p.perAddress };
  const flood = forkChild(join(BENCH_DIR, 'login-flood.js'), { args: [JSON.stringify(args)], logFile: join(ctx.logDir, 'login-flood.log') });
  try {
    await waitFor(flood, 'ready');
    // The flood first fills every queue it can.
    await sleep(1000);
    const good = await goodLogins(ours, seconds * 1000, ctx.plan.loginMaxSamples);
    const f = await ask<{ requests: number; seconds: number; statuses: Record<string, number> }>(flood, { cmd: 'stop' }, 180_000);
    return { phase: p.name, ...good, flood: { requests: f.requests, seconds: f.seconds, statuses: f.statuses } };
  } finally {
    await stopChild(flood);
  }
}

export async function loginScenario(ctx: Ctx): Promise<ScenarioResult> {
  const results: PhaseResult[] = [];
  for (const p of PHASES) {
    // A fresh service per phase: no throttling state carried over from the phase before.
    const ours = await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'echo'));
    try {
      const r = await runPhase(ctx, ours, p);
      results.push(r);
      ctx.progress(`login: ${p.name}: good user p50 ${fmt(percentile(r.goodLatenciesMs, 50), 1)} ms over ${r.goodLatenciesMs.length} logins${r.flood ? `, flood ${fmt(r.flood.requests / r.flood.seconds)}/s ${JSON.stringify(r.flood.statuses)}` : ''}`);
    } finally {
      await ours.stop();
    }
  }
  const statuses = (s: Record<string, number>): string => Object.entries(s).sort().map(([k, n]) => `${k} x${fmt(n)}`).join(', ');
  const rows = results.map((r) => [
    r.phase, String(r.goodLatenciesMs.length), fmt(percentile(r.goodLatenciesMs, 50), 1), fmt(percentile(r.goodLatenciesMs, 99), 1),
    fmt(Math.max(...r.goodLatenciesMs), 1), statuses(r.goodStatuses),
    r.flood ? fmt(r.flood.requests / r.flood.seconds) : '-', r.flood ? statuses(r.flood.statuses) : '-',
  ]);
  const text = table(['Good user\'s login (POST /v3/auth/tokens)', 'logins', 'p50 ms', 'p99 ms', 'max ms', 'good answers', 'flood req/s', 'flood answers'], rows);
  const quiet = percentile(results[0]!.goodLatenciesMs, 50);
  const oneAddress = results[1]!;
  const goals: Goal[] = [{
    scenario: 'login', goal: 'a flood of bad logins from one address leaves a good login within 3x its quiet p99, every one accepted',
    measured: `p99 ${fmt(percentile(oneAddress.goodLatenciesMs, 99), 1)} ms under the flood vs p50 ${fmt(quiet, 1)} / p99 ${fmt(percentile(results[0]!.goodLatenciesMs, 99), 1)} ms quiet; ${statuses(oneAddress.goodStatuses)}`,
    met: percentile(oneAddress.goodLatenciesMs, 99) <= 3 * percentile(results[0]!.goodLatenciesMs, 99) && Object.keys(oneAddress.goodStatuses).every((k) => k === '201'),
  }];
  return { name: 'login', text, goals, data: { phases: results } };
}
