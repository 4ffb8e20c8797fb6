/**
 * Framebuffer relay: backend-to-browser throughput. Per round and contender, a fresh session on
 * the stream backend; the client asks for `bulkMiB` MiB of framebuffer data (FramebufferUpdates of
 * 1 MiB Raw rectangles) and times it from the request until the last byte arrived.
 * MB/s = 10^6 bytes per second. Each contender first runs one round of the same size that is not
 * counted (a shorter warm-up left the first counted round of every contender slower and costlier
 * than the rest); then the rounds rotate the contenders' order and the medians are reported.
 */
import { type Contender, direct, startOurs, startRelay, startWebsockify } from '../lib/contenders.js';
import { STREAM_UNIT_BYTES } from '../lib/rfb-session.js';
import { fmt, median, ratio, sleep, table } from '../lib/stats.js';
import { type BulkRound, type Ctx, type Goal, type ScenarioResult, bulkRound, oursOptions, profiled, rotate, stopAll } from './common.js';

export async function bulkScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const port = ctx.backend.streamPort;
  const cs: Contender[] = [];
  try {
    cs.push(direct(port, ctx.backend));
    cs.push(await startRelay(ctx.logDir, port));
    cs.push(await startWebsockify(ctx.logDir, port));
    cs.push(await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'stream')));
    // Warm-up, not counted: a full round each, so that every counted round runs warm.
    for (const c of cs) {
      const w = await bulkRound(c, ctx.backend, p.bulkMiB);
      ctx.progress(`bulk: warm-up (not counted): ${c.name}: ${fmt(w.mbps)} MB/s, CPU ms/MB ${fmt(w.cpu.contender ?? NaN, 2)}`);
    }
    const rounds = new Map<string, BulkRound[]>(cs.map((c) => [c.name, []]));
    for (let r = 0; r < p.bulkRounds; r++) {
      for (const c of rotate(cs, r)) {
        const round = await profiled(ctx, c, 'bulk', () => bulkRound(c, ctx.backend, p.bulkMiB));
        rounds.get(c.name)!.push(round);
        ctx.progress(`bulk: round ${r + 1}: ${c.name}: ${fmt(round.mbps)} MB/s, CPU ms/MB ${fmt(round.cpu.contender ?? NaN, 2)}`);
        await sleep(200);
      }
    }
    const med = (name: string): number => median(rounds.get(name)!.map((x) => x.mbps));
    const medCpu = (name: string, k: keyof BulkRound['cpu']): number => median(rounds.get(name)!.map((x) => x.cpu[k] ?? NaN));
    const d = med('direct TCP');
    const ours = med('ecs-console');
    const rows = cs.map((c) => [c.name, fmt(med(c.name)), rounds.get(c.name)!.map((x) => fmt(x.mbps)).join(' / '), ratio(med(c.name), d),
      c.pid ? fmt(medCpu(c.name, 'contender'), 2) : '-', fmt(medCpu(c.name, 'backend'), 2), fmt(medCpu(c.name, 'client'), 2)]);
    const text = table([`Framebuffer relay (${p.bulkMiB} MiB)`, 'MB/s (median)', 'rounds', 'vs direct', 'CPU ms/MB: relay', 'backend', 'client'], rows);
    const wsk = med('websockify');
    const goals: Goal[] = [
      { scenario: 'bulk', goal: '>= websockify', measured: `${fmt(ours)} vs ${fmt(wsk)} MB/s`, met: ours >= wsk },
      { scenario: 'bulk', goal: '>= 60% of direct TCP', measured: `${fmt((ours / d) * 100)}% (${fmt(ours)} vs ${fmt(d)} MB/s)`, met: ours >= d * 0.6 },
    ];
    return { name: 'bulk', text, goals, data: { mib: p.bulkMiB, bytesPerRun: p.bulkMiB * STREAM_UNIT_BYTES, mbps: Object.fromEntries([...rounds].map(([k, v]) => [k, v.map((x) => x.mbps)])), cpuMsPerMB: Object.fromEntries([...rounds].map(([k, v]) => [k, v.map((x) => x.cpu)])) } };
  } finally {
    await stopAll(cs);
  }
}
