/**
 * Input round trip: one session per contender; the client sends a 10-byte FramebufferUpdateRequest
 * (a valid client message: our proxy parses every browser message), the echo backend sends the
 * same 10 bytes back, the client waits for them before the next one. Rounds alternate the
 * contenders (many short rounds, so that bursts of other load reach every contender alike);
 * percentiles are over all rounds' samples. "Added" = the contender's percentile minus direct
 * TCP's. CPU per round trip: the contender's processes (every thread, exact schedstat time) over
 * its rounds, which the machine's other load skews far less than the percentiles.
 */
import { type Contender, direct, startOurs, startRelay, startWebsockify } from '../lib/contenders.js';
import { BenchSession } from '../lib/rfb-session.js';
import { fmt, percentile, ratio, table } from '../lib/stats.js';
import { treeRunMs } from '../lib/procs.js';
import { type Ctx, type Goal, type ScenarioResult, oursOptions, profiled, rotate, stopAll } from './common.js';

export async function roundTripScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const port = ctx.backend.echoPort;
  const cs: Contender[] = [];
  const sessions = new Map<string, BenchSession>();
  try {
    cs.push(direct(port, ctx.backend));
    cs.push(await startRelay(ctx.logDir, port));
    cs.push(await startWebsockify(ctx.logDir, port));
    cs.push(await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'echo')));
    const samples = new Map<string, number[]>(cs.map((c) => [c.name, []]));
    const cpuMs = new Map<string, number>(cs.map((c) => [c.name, 0]));
    for (const c of cs) {
      await c.prepare(1);
      const s = await BenchSession.open(c.next());
      sessions.set(c.name, s);
      // Warm-up, not counted.
      await s.roundTrips(500);
    }
    for (let r = 0; r < p.rttRounds; r++) {
      for (const c of rotate(cs, r)) {
        const s = sessions.get(c.name)!;
        const c0 = c.pid ? treeRunMs(c.pid) : 0;
        samples.get(c.name)!.push(...(await profiled(ctx, c, 'round-trip', () => s.roundTrips(p.rttPerRound))));
        if (c.pid) cpuMs.set(c.name, cpuMs.get(c.name)! + treeRunMs(c.pid) - c0);
      }
      if ((r + 1) % 5 === 0 || r + 1 === p.rttRounds) ctx.progress(`round trip: round ${r + 1} of ${p.rttRounds} done`);
    }
    const pct = (name: string, q: number): number => percentile(samples.get(name)!, q);
    const d50 = pct('direct TCP', 50);
    const d99 = pct('direct TCP', 99);
    const cpuUs = (c: Contender): number => (c.pid ? (cpuMs.get(c.name)! * 1000) / samples.get(c.name)!.length : NaN);
    const rows = cs.map((c) => [
      c.name, fmt(pct(c.name, 50)), fmt(pct(c.name, 99)), fmt(pct(c.name, 50) - d50), fmt(pct(c.name, 99) - d99), c.pid ? fmt(cpuUs(c), 1) : '-', fmt(samples.get(c.name)!.length),
    ]);
    const text = table(['Input round trip (10 bytes)', 'p50 us', 'p99 us', 'added p50 us', 'added p99 us', 'CPU us/round trip: relay', 'samples'], rows);
    const ours50 = pct('ecs-console', 50) - d50;
    const relay50 = pct('ws relay', 50) - d50;
    const goals: Goal[] = [
      { scenario: 'round trip', goal: "added p50 <= 1.5x the minimal relay's", measured: `${fmt(ours50)} us vs ${fmt(relay50)} us (${ratio(ours50, relay50)})`, met: ours50 <= relay50 * 1.5 },
      {
        scenario: 'round trip', goal: 'ahead of websockify (p50 and p99)',
        measured: `p50 ${fmt(pct('ecs-console', 50))} vs ${fmt(pct('websockify', 50))} us, p99 ${fmt(pct('ecs-console', 99))} vs ${fmt(pct('websockify', 99))} us`,
        met: pct('ecs-console', 50) < pct('websockify', 50) && pct('ecs-console', 99) < pct('websockify', 99),
      },
      {
        scenario: 'round trip', goal: "p99 <= websockify's and <= the minimal relay's (second round)",
        measured: `${fmt(pct('ecs-console', 99))} vs ${fmt(pct('websockify', 99))} (websockify) and ${fmt(pct('ws relay', 99))} us (relay)`,
        met: pct('ecs-console', 99) <= pct('websockify', 99) && pct('ecs-console', 99) <= pct('ws relay', 99),
      },
    ];
    const data = Object.fromEntries(cs.map((c) => [c.name, { p50Us: pct(c.name, 50), p90Us: pct(c.name, 90), p99Us: pct(c.name, 99), cpuUsPerRoundTrip: c.pid ? cpuUs(c) : null, samples: samples.get(c.name)!.length }]));
    return { name: 'round trip', text, goals, data };
  } finally {
    for (const s of sessions.values()) s.close();
    await stopAll(cs);
  }
}
