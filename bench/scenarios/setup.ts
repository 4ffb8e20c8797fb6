/**
 * Session setup: sessions per second from the WebSocket connect to ServerInit, `concurrency`
 * sessions opening at once. Ours: every session presents a one-time token issued beforehand
 * through the API (AK/SK-signed remote_console, not timed), the proxy consumes it, re-checks the
 * server, connects and authenticates to the backend, and hands the browser ServerInit. The
 * relays carry the client's own handshake (VNC authentication included) to the same backend.
 * Rounds alternate the contenders; the table shows medians over rounds.
 */
import { type Contender, direct, startOurs, startRelay, startWebsockify } from '../lib/contenders.js';
import { cpuMs } from '../lib/procs.js';
import { fmt, median, percentile, ratio, sleep, table } from '../lib/stats.js';
import { type Ctx, type Goal, type ScenarioResult, closeAll, openMany, oursOptions, profiled, rotate, stopAll } from './common.js';

interface Round {
  round: number;
  sessions: number;
  failures: number;
  firstError: string | null;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU ms the contender's process (tree) spent per session, opening and closing it. */
  cpuMsPerSession: number | null;
  /** Seconds to open `setupBurst` sessions started all at once. */
  burstSeconds: number;
  burstFailures: number;
}

export async function setupScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const port = ctx.backend.echoPort;
  const cs: Contender[] = [];
  try {
    cs.push(await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'echo')));
    cs.push(await startRelay(ctx.logDir, port));
    cs.push(await startWebsockify(ctx.logDir, port));
    cs.push(direct(port, ctx.backend));
    const rounds = new Map<string, Round[]>(cs.map((c) => [c.name, []]));
    // Warm-up (not counted): JIT, connection pools, the store's page cache.
    for (const c of cs) {
      const n = c.name === 'websockify' ? 10 : 200;
      await c.prepare(n);
      const o = await openMany(c, n, p.setupConcurrency);
      if (o.failures) throw new Error(`${c.name}: warm-up failed: ${o.firstError}`);
      await closeAll(c, o.sessions);
    }
    for (let r = 0; r < p.setupRounds; r++) {
      for (const c of rotate(cs, r)) {
        const n = c.name === 'websockify' ? p.setupSessionsWebsockify : p.setupSessions;
        await c.prepare(n);
        // Let the API calls' store writes and log lines finish before the clock starts.
        await sleep(300);
        const cpu0 = c.pid ? cpuMs(c.pid) : 0;
        const o = await profiled(ctx, c, 'setup', () => openMany(c, n, p.setupConcurrency));
        const ok = o.sessions.length;
        const firstError = o.firstError;
        const failures = o.failures;
        const elapsedMs = o.elapsedMs;
        const latencies = o.latenciesMs;
        await closeAll(c, o.sessions);
        // CPU over open and close: websockify's handler processes count only once reaped.
        const cpu1 = c.pid ? cpuMs(c.pid) : 0;
        await sleep(300);
        await c.prepare(p.setupBurst);
        await sleep(300);
        const burst = await openMany(c, p.setupBurst, p.setupBurst);
        await closeAll(c, burst.sessions);
        rounds.get(c.name)!.push({
          burstSeconds: burst.elapsedMs / 1000, burstFailures: burst.failures,
          round: r, sessions: ok, failures, firstError, perSec: ok / (elapsedMs / 1000),
          p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), cpuMsPerSession: c.pid ? (cpu1 - cpu0) / n : null,
        });
        ctx.progress(`setup: round ${r + 1}: ${c.name}: ${fmt(ok / (elapsedMs / 1000))}/s${failures ? `, ${failures} failed: ${firstError}` : ''}`);
        await sleep(300);
      }
    }
    const med = (name: string, k: 'perSec' | 'p50Ms' | 'p99Ms' | 'cpuMsPerSession' | 'burstSeconds'): number => median(rounds.get(name)!.map((x) => x[k] ?? NaN));
    const ours = med('ecs-console', 'perSec');
    const rows = cs.map((c) => [
      c.name, fmt(med(c.name, 'perSec')), fmt(med(c.name, 'p50Ms'), 1), fmt(med(c.name, 'p99Ms'), 1),
      c.pid ? fmt(med(c.name, 'cpuMsPerSession'), 2) : '-', String(rounds.get(c.name)!.reduce((a, x) => a + x.failures + x.burstFailures, 0)),
      c.name === 'ecs-console' ? '1.00x' : ratio(ours, med(c.name, 'perSec')), fmt(med(c.name, 'burstSeconds'), 2),
    ]);
    const text = table([`Session setup (connect to ServerInit, ${p.setupConcurrency} at a time)`, 'sessions/s', 'p50 ms', 'p99 ms', 'CPU ms/session (open+close)', 'failed',
      'ecs-console vs', `${p.setupBurst} at once: s`], rows);
    const relay = med('ws relay', 'perSec');
    const wsk = med('websockify', 'perSec');
    const failures = rounds.get('ecs-console')!.reduce((a, x) => a + x.failures + x.burstFailures, 0);
    const burst = (name: string): number => med(name, 'burstSeconds');
    const goals: Goal[] = [
      { scenario: 'setup', goal: '>= 1,000 sessions/s on SQLite', measured: `${fmt(ours)}/s${failures ? `, ${failures} failed` : ''}`, met: ours >= 1000 && failures === 0 },
      { scenario: 'setup', goal: ">= 50% of the minimal relay's rate", measured: `${fmt((ours / relay) * 100)}% (${fmt(ours)} vs ${fmt(relay)}/s)`, met: ours >= relay * 0.5 },
      {
        scenario: 'setup', goal: ">= 85% of the minimal relay's rate (second round)",
        measured: `${fmt((ours / relay) * 100)}%; CPU per session ${fmt(med('ecs-console', 'cpuMsPerSession'), 2)} vs ${fmt(med('ws relay', 'cpuMsPerSession'), 2)} ms`,
        met: ours >= relay * 0.85,
      },
      {
        scenario: 'setup', goal: '>= 20x websockify',
        measured: `${ratio(ours, wsk)} (${fmt(ours)} vs ${fmt(wsk, 1)}/s); ${p.setupBurst} at once: ${ratio(burst('websockify'), burst('ecs-console'))} (${fmt(burst('ecs-console'), 2)} vs ${fmt(burst('websockify'), 2)} s)`,
        met: ours >= wsk * 20,
      },
    ];
    return { name: 'setup', text, goals, data: Object.fromEntries(rounds) };
  } finally {
    await stopAll(cs);
  }
}
