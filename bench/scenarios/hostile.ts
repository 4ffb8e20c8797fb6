/**
 * Hostile VNC servers: what a backend flooding as fast as it can costs the proxy's memory, at
 * each stage of the handshake and during the relay (test/helpers/hostile-vnc-child.ts, a separate
 * process; the browsers stall as test/helpers/hostile-vnc.ts describes). Per stage, and then all
 * stages at once: ecs-console in a fresh process, full GC, VmRSS as the baseline; `hostileSessions`
 * sessions opened and left flooding for `hostileSeconds`, sampling VmRSS and external memory
 * (`process.memoryUsage()`, Buffers live there) the whole time; then every session closed and,
 * 2 s later, VmRSS without a GC ("after") and after two full GCs ("after GC").
 *
 * A run against a proxy without caps would eat the machine: flooding stops early when the
 * process grows by more than 1.5 GiB, and the row says so.
 */
import { issueTokens } from '../lib/api-client.js';
import { type Ours, startOurs } from '../lib/contenders.js';
import { rssKiB } from '../lib/procs.js';
import { fmt, sleep, table, until } from '../lib/stats.js';
import { forkHostileVnc, HOSTILE_STAGES, openStalledSession, type HostileStage, type StalledSession } from '../../test/helpers/hostile-vnc.js';
import { type Ctx, type Goal, type ScenarioResult, oursOptions } from './common.js';

const ABORT_GROWTH_KIB = 1.5 * 1024 * 1024;
/** The promise checked: growth per flooded session, at most (SECURITY.md). */
const GOAL_MIB_PER_SESSION = 4;

interface Row {
  stages: string;
  sessions: number;
  /** Sessions that could not be opened (a proxy busy with floods may not answer in time). */
  failed: number;
  baselineMiB: number;
  peakMiB: number;
  peakExternalMiB: number;
  afterMiB: number;
  afterGcMiB: number;
  floodedMiB: number;
  stoppedEarly: boolean;
}

const mib = (kib: number): number => kib / 1024;

async function flood(ctx: Ctx, ours: Ours, stages: readonly HostileStage[], flooded: () => Promise<number>): Promise<Row> {
  const p = ctx.plan;
  const pid = ours.pid!;
  const origin = `http://127.0.0.1:${ours.info.proxy}`;
  for (let i = 0; i < 2; i++) {
    await ours.gc();
    await sleep(300);
  }
  const baselineKiB = rssKiB(pid);
  const floodedBefore = await flooded();
  const sessions: StalledSession[] = [];
  let failed = 0;
  let peakKiB = baselineKiB;
  let peakExternal = 0;
  let stoppedEarly = false;
  try {
    for (const stage of stages) {
      const tokens = await issueTokens(ours.info.api, ours.info.projectId, [ours.info.extraServers[stage]!], ours.info, p.hostileSessions);
      const opened = await Promise.allSettled(tokens.map((t) => openStalledSession(`ws://127.0.0.1:${ours.info.proxy}/websockify?token=${t}`, origin, stage)));
      for (const o of opened) {
        if (o.status === 'fulfilled') sessions.push(o.value);
        else failed++;
      }
    }
    const end = Date.now() + p.hostileSeconds * 1000;
    while (Date.now() < end) {
      peakKiB = Math.max(peakKiB, rssKiB(pid));
      peakExternal = Math.max(peakExternal, (await ours.memory!()).external);
      if (peakKiB - baselineKiB > ABORT_GROWTH_KIB) {
        stoppedEarly = true;
        break;
      }
      await sleep(100);
    }
  } finally {
    for (const s of sessions) s.close();
  }
  const floodedMiB = (await flooded() - floodedBefore) / 2 ** 20;
  await until(async () => (await ours.sessions()) === 0, 30_000, 50);
  await sleep(2000);
  const afterKiB = rssKiB(pid);
  for (let i = 0; i < 2; i++) {
    await ours.gc();
    await sleep(300);
  }
  const row: Row = {
    stages: stages.length === 1 ? stages[0]! : 'all at once', sessions: sessions.length, failed, baselineMiB: mib(baselineKiB), peakMiB: mib(peakKiB),
    peakExternalMiB: peakExternal / 2 ** 20, afterMiB: mib(afterKiB), afterGcMiB: mib(rssKiB(pid)), floodedMiB, stoppedEarly,
  };
  ctx.progress(`hostile: ${row.stages}: ${row.sessions} sessions${failed ? ` (${failed} failed to open)` : ''}, RSS ${fmt(row.baselineMiB, 1)} -> peak ${fmt(row.peakMiB, 1)} -> ${fmt(row.afterMiB, 1)} MiB` +
    `${stoppedEarly ? ' (stopped early)' : ''}; the backend wrote ${fmt(floodedMiB)} MiB`);
  return row;
}

export async function hostileScenario(ctx: Ctx): Promise<ScenarioResult> {
  const backend = await forkHostileVnc();
  let ours: Ours | null = null;
  try {
    ours = await startOurs(ctx.logDir, ctx.backend, { ...oursOptions(ctx, 'echo'), extraPorts: { ...backend.ports } });
    const rows: Row[] = [];
    for (const stage of HOSTILE_STAGES) rows.push(await flood(ctx, ours, [stage], () => backend.flooded()));
    rows.push(await flood(ctx, ours, HOSTILE_STAGES, () => backend.flooded()));
    const perSession = (r: Row): number => (r.peakMiB - r.baselineMiB) / Math.max(1, r.sessions);
    const text = table(
      [`Hostile backend flooding (${ctx.plan.hostileSeconds} s)`, 'sessions', 'failed to open', 'baseline MiB', 'peak RSS MiB', 'MiB/session', 'peak external MiB', 'after MiB', 'after GC MiB', 'backend wrote MiB'],
      rows.map((r) => [
        r.stages + (r.stoppedEarly ? ' (stopped at +1.5 GiB)' : ''), fmt(r.sessions), fmt(r.failed), fmt(r.baselineMiB, 1), fmt(r.peakMiB, 1), fmt(perSession(r), 2),
        fmt(r.peakExternalMiB, 1), fmt(r.afterMiB, 1), fmt(r.afterGcMiB, 1), fmt(r.floodedMiB),
      ]),
    );
    const worst = rows.reduce((a, r) => (perSession(r) > perSession(a) ? r : a));
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    const goals: Goal[] = [
      { scenario: 'hostile', goal: `<= ${GOAL_MIB_PER_SESSION} MiB of RSS per flooded session`, measured: `${fmt(perSession(worst), 2)} MiB (${worst.stages})`, met: rows.every((r) => !r.stoppedEarly && r.failed === 0 && perSession(r) <= GOAL_MIB_PER_SESSION) },
      {
        scenario: 'hostile', goal: 'memory returns after the sessions',
        measured: `at the end, ${fmt(last.afterMiB - first.baselineMiB, 1)} MiB above the first baseline 2 s after the last sessions (no GC), ${fmt(last.afterGcMiB - first.baselineMiB, 1)} after a GC`,
        met: last.afterMiB - first.baselineMiB <= GOAL_MIB_PER_SESSION * last.sessions,
      },
    ];
    return { name: 'hostile', text, goals, data: { rows } };
  } finally {
    await ours?.stop();
    await backend.stop();
  }
}
