/**
 * Password logins under a flood of bad ones: how long a good user's login (POST /v3/auth/tokens,
 * one scrypt) takes, alone and while a flood of bad logins runs in another process, from one
 * address (100 connections) and from 50 addresses (2 connections each). The good user logs in
 * from its own address (127.0.0.2), one login after the other, for the phase's duration; it has
 * logged in from there once before the flood starts (a returning user). Latencies are those of
 * accepted logins (201); refused ones (429) are counted apart.
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
  /** Accepted logins only. */
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
    do {
      const t0 = performance.now();
      const r = await post(agent, i.api, '/v3/auth/tokens', body, null, {}, GOOD_ADDRESS);
      if (r.status === 201) goodLatenciesMs.push(performance.now() - t0);
      else if (r.status === 429) await sleep(Number(r.headers['retry-after'] ?? 1) * 1000);
      goodStatuses[r.status] = (goodStatuses[r.status] ?? 0) + 1;
    } while (performance.now() < end && goodLatenciesMs.length < max);
  } finally {
    agent.destroy();
  }
  return { goodLatenciesMs, goodStatuses };
}

async function runPhase(ctx: Ctx, ours: Ours, p: Phase): Promise<PhaseResult> {
  const seconds = ctx.plan.loginSeconds;
  // A returning user: logged in from its address once before.
  await goodLogins(ours, 0, 1);
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
  const text = table(['Good user\'s login (POST /v3/auth/tokens)', 'accepted', 'p50 ms', 'p99 ms', 'max ms', 'good user\'s answers', 'flood req/s', 'flood answers'], rows);
  const quiet = percentile(results[0]!.goodLatenciesMs, 50);
  const onlyAccepted = (r: PhaseResult): boolean => Object.keys(r.goodStatuses).every((k) => k === '201');
  const under = (r: PhaseResult): string => `p50 ${fmt(percentile(r.goodLatenciesMs, 50), 1)} ms (quiet ${fmt(quiet, 1)}), p99 ${fmt(percentile(r.goodLatenciesMs, 99), 1)} ms; ${statuses(r.goodStatuses)}`;
  // The issue reported 4.3 s against 90 ms quiet (48x) under 400 bad logins from one address.
  const goals: Goal[] = [
    {
      scenario: 'login', goal: 'flood of bad logins from one address: every good login accepted, p50 <= 4x quiet',
      measured: under(results[1]!), met: onlyAccepted(results[1]!) && percentile(results[1]!.goodLatenciesMs, 50) <= 4 * quiet,
    },
    {
      scenario: 'login', goal: 'flood from 50 addresses: every login of a returning user accepted, p50 <= 4x quiet',
      measured: under(results[2]!), met: onlyAccepted(results[2]!) && percentile(results[2]!.goodLatenciesMs, 50) <= 4 * quiet,
    },
  ];
  return { name: 'login', text, goals, data: { phases: results } };
}
