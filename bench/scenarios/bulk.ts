/**
 * Framebuffer relay: backend-to-browser throughput. Per round and contender, a fresh session on
 * the stream backend; the client asks for `bulkMiB` MiB of framebuffer data (FramebufferUpdates of
 * 1 MiB Raw rectangles) and times it from the request until the last byte arrived.
 * MB/s = 10^6 bytes per second.
 */
import { type Contender, direct, startOurs, startRelay, startWebsockify } from '../lib/contenders.js';
import { BenchSession, STREAM_UNIT_BYTES } from '../lib/rfb-session.js';
import { fmt, median, ratio, sleep, table } from '../lib/stats.js';
import { type Ctx, type Goal, type ScenarioResult, oursOptions, profiled, rotate, stopAll } from './common.js';

async function once(c: Contender, mib: number): Promise<number> {
  await c.prepare(1);
  const s = await BenchSession.open(c.next());
  try {
    const bytes = mib * STREAM_UNIT_BYTES;
    const ms = await s.bulk(mib, bytes);
    return bytes / 1e6 / (ms / 1000);
  } finally {
    s.close();
  }
}

export async function bulkScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const port = ctx.backend.streamPort;
  const cs: Contender[] = [];
  try {
    cs.push(direct(port, ctx.backend));
    cs.push(await startRelay(ctx.logDir, port));
    cs.push(await startWebsockify(ctx.logDir, port));
    cs.push(await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'stream')));
    // Warm-up, not counted.
    for (const c of cs) await once(c, 16);
    const rounds = new Map<string, number[]>(cs.map((c) => [c.name, []]));
    for (let r = 0; r < p.bulkRounds; r++) {
      for (const c of rotate(cs, r)) {
        const mbps = await profiled(ctx, c, 'bulk', () => once(c, p.bulkMiB));
        rounds.get(c.name)!.push(mbps);
        ctx.progress(`bulk: round ${r + 1}: ${c.name}: ${fmt(mbps)} MB/s`);
        await sleep(200);
      }
    }
    const med = (name: string): number => median(rounds.get(name)!);
    const d = med('direct TCP');
    const ours = med('ecs-console');
    const rows = cs.map((c) => [c.name, fmt(med(c.name)), rounds.get(c.name)!.map((x) => fmt(x)).join(' / '), ratio(med(c.name), d)]);
    const text = table([`Framebuffer relay (${p.bulkMiB} MiB)`, 'MB/s (median)', 'rounds', 'vs direct'], rows);
    const wsk = med('websockify');
    const goals: Goal[] = [
      { scenario: 'bulk', goal: '>= websockify', measured: `${fmt(ours)} vs ${fmt(wsk)} MB/s`, met: ours >= wsk },
      { scenario: 'bulk', goal: '>= 60% of direct TCP', measured: `${fmt((ours / d) * 100)}% (${fmt(ours)} vs ${fmt(d)} MB/s)`, met: ours >= d * 0.6 },
    ];
    return { name: 'bulk', text, goals, data: { mib: p.bulkMiB, bytesPerRun: p.bulkMiB * STREAM_UNIT_BYTES, mbps: Object.fromEntries(rounds) } };
  } finally {
    await stopAll(cs);
  }
}
