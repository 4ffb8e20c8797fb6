/**
 * Concurrent idle consoles: the memory a contender needs per open, idle session.
 *
 * Node contenders (ours, the minimal relay) run in fresh processes: warm up (200 sessions opened
 * and closed), full GC, read VmRSS as the baseline; then open sessions cumulatively to each
 * count, let them settle, full GC, read VmRSS again. KiB per session = RSS delta / sessions.
 * Each proxied session costs the proxy two file descriptors (browser and backend sockets), so
 * the largest count is capped to what the process's descriptor limit allows.
 *
 * websockify forks a process per session: its memory is summed over the process tree, as RSS
 * (shared pages counted in every process, what the reference table shows) and as PSS (shared
 * pages divided among sharers: the memory the machine really spends).
 */
import { type Contender, startOurs, startRelay, startWebsockify } from '../lib/contenders.js';
import { ask, fdCount, fdLimit, processTree, pssKiB, rssKiB } from '../lib/procs.js';
import { fmt, sleep, table } from '../lib/stats.js';
import { type Ctx, type Goal, type ScenarioResult, closeAll, openMany, oursOptions } from './common.js';

const WARMUP = 200;
const OPEN_CONCURRENCY = 100;
const GOAL_KIB = 32;

interface Level {
  sessions: number;
  failures: number;
  rssKiB: number;
  heapUsedKiB: number | null;
  kibPerSession: number;
  openPerSec: number;
}

interface NodeIdle {
  baselineKiB: number;
  baselineHeapKiB: number | null;
  fdLimit: number;
  maxSessionsByFds: number;
  levels: Level[];
}

interface ForkIdle {
  sessions: number;
  failures: number;
  firstError: string | null;
  processes: number;
  baselineRssKiB: number;
  baselinePssKiB: number;
  rssSumKiB: number;
  pssSumKiB: number;
  kibPerSessionPss: number;
  kibPerSessionRss: number;
  openSeconds: number;
}

/** Full GC twice with pauses: V8 gives freed pages back over a few collections, not at once. */
async function settle(c: Contender): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await c.gc();
    await sleep(500);
  }
}

async function measureNode(ctx: Ctx, c: Contender): Promise<NodeIdle> {
  const pid = c.pid!;
  const heapKiB = async (): Promise<number | null> => (c.memory ? Math.round((await c.memory()).heapUsed / 1024) : null);
  const limit = fdLimit(pid);
  // Two descriptors per session, and a margin for what the process opens meanwhile (log, store).
  const maxSessionsByFds = Math.floor((limit - fdCount(pid) - 64) / 2);
  const counts = [...new Set(ctx.plan.idleCounts.map((n) => Math.min(n, maxSessionsByFds)))];
  const top = counts[counts.length - 1]!;
  ctx.progress(`idle: ${c.name}: preparing ${WARMUP + top} sessions`);
  await c.prepare(WARMUP + top);
  const warm = await openMany(c, WARMUP, OPEN_CONCURRENCY);
  if (warm.failures) throw new Error(`${c.name}: warm-up failed: ${warm.firstError}`);
  await closeAll(c, warm.sessions);
  await settle(c);
  const baselineKiB = rssKiB(pid);
  const baselineHeapKiB = await heapKiB();
  const open = [];
  const levels: Level[] = [];
  let failures = 0;
  for (const n of counts) {
    const o = await openMany(c, n - open.length, OPEN_CONCURRENCY);
    open.push(...o.sessions);
    failures += o.failures;
    if (o.failures) ctx.progress(`idle: ${c.name}: ${o.failures} sessions failed: ${o.firstError}`);
    // Settle: handshake timers fire, queued log lines and store writes complete.
    await sleep(ctx.plan.quick ? 1000 : 2000);
    await settle(c);
    const held = await c.sessions();
    const rss = rssKiB(pid);
    levels.push({
      sessions: held, failures, rssKiB: rss, heapUsedKiB: await heapKiB(),
      kibPerSession: (rss - baselineKiB) / held, openPerSec: o.sessions.length / (o.elapsedMs / 1000),
    });
    ctx.progress(`idle: ${c.name}: ${held} sessions, RSS ${fmt(rss / 1024, 1)} MiB`);
  }
  await closeAll(c, open);
  return { baselineKiB, baselineHeapKiB, fdLimit: limit, maxSessionsByFds, levels };
}

async function measureWebsockify(ctx: Ctx): Promise<ForkIdle> {
  const c = await startWebsockify(ctx.logDir, ctx.backend.echoPort);
  try {
    const pid = c.pid!;
    await sleep(500);
    const baselineRssKiB = rssKiB(pid);
    const baselinePssKiB = pssKiB(pid);
    ctx.progress(`idle: websockify: opening ${ctx.plan.websockifyIdle} sessions`);
    const o = await openMany(c, ctx.plan.websockifyIdle, 20);
    await sleep(2000);
    const tree = processTree(pid);
    const rssSumKiB = tree.reduce((a, p) => a + rssKiB(p), 0);
    const pssSumKiB = tree.reduce((a, p) => a + pssKiB(p), 0);
    const n = o.sessions.length;
    const r: ForkIdle = {
      sessions: n, failures: o.failures, firstError: o.firstError, processes: tree.length, baselineRssKiB, baselinePssKiB, rssSumKiB, pssSumKiB,
      kibPerSessionPss: (pssSumKiB - baselinePssKiB) / n, kibPerSessionRss: (rssSumKiB - baselineRssKiB) / n, openSeconds: o.elapsedMs / 1000,
    };
    await closeAll(c, o.sessions);
    return r;
  } finally {
    await c.stop();
  }
}

export async function idleScenario(ctx: Ctx): Promise<ScenarioResult> {
  const ours = await startOurs(ctx.logDir, ctx.backend, oursOptions(ctx, 'echo'));
  let oursData: NodeIdle;
  try {
    oursData = await measureNode(ctx, ours);
    if (ctx.profileDir) {
      // Re-open the top count and snapshot the heap there (profiling runs only: it costs time).
      const top = oursData.levels[oursData.levels.length - 1]!.sessions;
      await ours.prepare(top);
      const o = await openMany(ours, top, OPEN_CONCURRENCY);
      await sleep(2000);
      const path = `${ctx.profileDir}/idle-${top}.heapsnapshot`;
      await ask(ours.cp, { cmd: 'heap-snapshot', path }, 300_000);
      ctx.progress(`idle: heap snapshot at ${top} sessions: ${path}`);
      await closeAll(ours, o.sessions);
    }
  } finally {
    await ours.stop();
  }
  const relay = await startRelay(ctx.logDir, ctx.backend.echoPort);
  let relayData: NodeIdle;
  try {
    relayData = await measureNode(ctx, relay);
  } finally {
    await relay.stop();
  }
  const ws = await measureWebsockify(ctx);

  const rows: string[][] = [];
  const nodeRows = (name: string, d: NodeIdle): void => {
    for (const l of d.levels) {
      rows.push([name, fmt(l.sessions), fmt(d.baselineKiB / 1024, 1), fmt(l.rssKiB / 1024, 1), fmt(l.kibPerSession, 1),
        l.heapUsedKiB === null || d.baselineHeapKiB === null ? '-' : fmt((l.heapUsedKiB - d.baselineHeapKiB) / l.sessions, 1), '1', fmt(l.openPerSec)]);
    }
  };
  nodeRows('ecs-console', oursData);
  nodeRows('ws relay', relayData);
  rows.push(['websockify (RSS sum)', fmt(ws.sessions), fmt(ws.baselineRssKiB / 1024, 1), fmt(ws.rssSumKiB / 1024, 1), fmt(ws.kibPerSessionRss, 0), '-', fmt(ws.processes), fmt(ws.sessions / ws.openSeconds)]);
  rows.push(['websockify (PSS sum)', fmt(ws.sessions), fmt(ws.baselinePssKiB / 1024, 1), fmt(ws.pssSumKiB / 1024, 1), fmt(ws.kibPerSessionPss, 0), '-', fmt(ws.processes), '']);
  const text = table(['Concurrent idle consoles', 'sessions', 'baseline MiB', 'RSS MiB', 'KiB/session', 'JS heap KiB/session', 'processes', 'opened/s'], rows);

  const levels = oursData.levels;
  const top = levels[levels.length - 1]!;
  const wanted = Math.max(...ctx.plan.idleCounts);
  const why = ctx.plan.quick ? ' (quick run; the full run judges 10,000)'
    : top.sessions >= wanted ? ''
    : ` (${fmt(wanted)} asked; ${fmt(oursData.maxSessionsByFds)} fit in the ${fmt(oursData.fdLimit)}-descriptor limit at 2 per session)`;
  const goals: Goal[] = [{
    scenario: 'idle', goal: `<= ${GOAL_KIB} KiB per session at 10,000 sessions`,
    measured: `${fmt(top.kibPerSession, 1)} KiB at ${fmt(top.sessions)} sessions${why}`,
    met: top.kibPerSession <= GOAL_KIB && top.failures === 0,
  }];
  // Linear: judged between counts thousands apart, where a reading's noise (a few MiB) is small
  // against the growth. The cost of each session added over the upper interval may not exceed
  // that over the lower one by more than 25 %.
  const big = levels.filter((l) => l.sessions >= 1000);
  if (big.length >= 3) {
    const slope = (x: Level, y: Level): number => (y.rssKiB - x.rssKiB) / (y.sessions - x.sessions);
    const [a, b, c] = big.slice(-3) as [Level, Level, Level];
    const low = slope(a, b);
    const high = slope(b, c);
    goals.push({
      scenario: 'idle', goal: 'linear growth',
      measured: `${fmt(low, 1)} KiB per session added from ${fmt(a.sessions)} to ${fmt(b.sessions)}, ${fmt(high, 1)} from ${fmt(b.sessions)} to ${fmt(c.sessions)}`,
      met: high <= low * 1.25,
    });
  }
  // Second round: per session at the largest count both reached, against the minimal relay's.
  const relayTop = relayData.levels[relayData.levels.length - 1]!;
  goals.push({
    scenario: 'idle', goal: "<= 1.1x the minimal relay's KiB per session at the largest count (second round)",
    measured: `${fmt(top.kibPerSession, 1)} vs ${fmt(relayTop.kibPerSession, 1)} KiB (${fmt(top.sessions)} and ${fmt(relayTop.sessions)} sessions): ${fmt(top.kibPerSession / relayTop.kibPerSession, 2)}x`,
    met: top.kibPerSession <= relayTop.kibPerSession * 1.1,
  });
  if (!ctx.plan.quick) {
    goals.push({ scenario: 'idle', goal: 'websockify measured at >= 300 sessions', measured: `${ws.sessions} sessions (${ws.failures} failed)`, met: ws.sessions >= 300 && ws.failures === 0 });
  }
  return { name: 'idle', text, goals, data: { ours: oursData, relay: relayData, websockify: ws } };
}
