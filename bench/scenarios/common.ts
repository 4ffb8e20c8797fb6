/** What every scenario shares: the plan, the context, results and goals, opening many sessions. */
import type { Backend, Contender, OursOptions } from '../lib/contenders.js';
import { cpuMs, processTree } from '../lib/procs.js';
import { BenchSession, STREAM_UNIT_BYTES, pool } from '../lib/rfb-session.js';
import { until } from '../lib/stats.js';

/** How much each scenario does (full and --quick). */
export interface Plan {
  quick: boolean;
  /**
   * Idle session counts, opened cumulatively (capped by the file-descriptor limit). 5,000 is there
   * for the linearity check: two intervals of thousands of sessions, far above the noise.
   */
  idleCounts: number[];
  websockifyIdle: number;
  setupRounds: number;
  setupSessions: number;
  setupSessionsWebsockify: number;
  /** Sessions opening at once in the setup scenario (as many browsers connecting). */
  setupConcurrency: number;
  /** A burst: this many sessions started all at once (the reference's "time to open 300 sessions"). */
  setupBurst: number;
  /**
   * Round-trip rounds, each contender's in turn: many short rounds rather than a few long ones, so
   * that a burst of other load lands on every contender alike (the samples are pooled).
   */
  rttRounds: number;
  rttPerRound: number;
  /** Measured bulk rounds per contender (after a discarded warm-up round of the same size each). */
  bulkRounds: number;
  bulkMiB: number;
  /** Bulk rounds of the recording scenario (recording on vs off). */
  recordingBulkRounds: number;
  apiRounds: number;
  apiSeconds: number;
  wrkRounds: number;
  wrkSeconds: number;
  /** Hostile backend: sessions per stage, and how long each flood lasts. */
  hostileSessions: number;
  hostileSeconds: number;
  /** Seconds of good-user logins per login phase, and at most this many logins. */
  loginSeconds: number;
  loginMaxSamples: number;
}

export const FULL: Plan = {
  quick: false, idleCounts: [100, 1000, 5000, 10_000], websockifyIdle: 300,
  setupRounds: 3, setupSessions: 2000, setupSessionsWebsockify: 300, setupConcurrency: 50, setupBurst: 300,
  rttRounds: 20, rttPerRound: 500, bulkRounds: 5, bulkMiB: 512, recordingBulkRounds: 5,
  apiRounds: 3, apiSeconds: 8, wrkRounds: 2, wrkSeconds: 5,
  hostileSessions: 20, hostileSeconds: 3,
  loginSeconds: 15, loginMaxSamples: 200,
};

export const QUICK: Plan = {
  quick: true, idleCounts: [100, 1000], websockifyIdle: 100,
  setupRounds: 1, setupSessions: 500, setupSessionsWebsockify: 100, setupConcurrency: 50, setupBurst: 100,
  rttRounds: 4, rttPerRound: 500, bulkRounds: 1, bulkMiB: 64, recordingBulkRounds: 1,
  apiRounds: 1, apiSeconds: 3, wrkRounds: 1, wrkSeconds: 3,
  hostileSessions: 5, hostileSeconds: 2,
  loginSeconds: 5, loginMaxSamples: 60,
};

export interface Ctx {
  plan: Plan;
  backend: Backend;
  logDir: string;
  logLevel: string;
  /** Extra node flags for our child only (to try V8 settings, e.g. --initial-old-space-size=64). */
  nodeFlags: string[];
  /** Where to write CPU profiles and heap snapshots of our child; null = no profiling. */
  profileDir: string | null;
  progress(msg: string): void;
}

export interface Goal {
  scenario: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface ScenarioResult {
  name: string;
  /** Printed tables (Markdown). */
  text: string;
  goals: Goal[];
  data: unknown;
}

export interface Opened {
  sessions: BenchSession[];
  failures: number;
  firstError: string | null;
  /** Per session, ms from the connect to ServerInit. */
  latenciesMs: number[];
  elapsedMs: number;
}

/** Opens `n` sessions of `c`, `concurrency` at a time, each to ServerInit. */
export async function openMany(c: Contender, n: number, concurrency: number): Promise<Opened> {
  const latenciesMs: number[] = [];
  const t0 = performance.now();
  const r = await pool(n, concurrency, async () => {
    const s0 = performance.now();
    const s = await BenchSession.open(c.next());
    latenciesMs.push(performance.now() - s0);
    return s;
  });
  const elapsedMs = performance.now() - t0;
  const sessions = r.filter((x): x is BenchSession => x instanceof BenchSession);
  const errors = r.filter((x): x is Error => x instanceof Error);
  return { sessions, failures: errors.length, firstError: errors[0]?.message ?? null, latenciesMs, elapsedMs };
}

/** Closes sessions and waits until the contender holds none (or 30 s pass). */
export async function closeAll(c: Contender, sessions: BenchSession[]): Promise<void> {
  for (const s of sessions) s.close();
  sessions.length = 0;
  await until(async () => (await c.sessions()) === 0, 30_000, 50);
}

/** The contenders in round `r`'s order: rotated, so no one always goes first or last. */
export function rotate<T>(xs: readonly T[], r: number): T[] {
  const k = r % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** Stops contenders even when the scenario failed. */
export async function stopAll(cs: ReadonlyArray<Contender | null | undefined>): Promise<void> {
  await Promise.all(cs.map((c) => c?.stop()));
}

/**
 * Runs `fn`; in profiling runs, with a CPU profile of our child around it, written to
 * `<profileDir>/<label>.cpuprofile` (the last one of a label wins).
 */
export async function profiled<T>(ctx: Ctx, c: Contender, label: string, fn: () => Promise<T>): Promise<T> {
  if (!ctx.profileDir || !c.name.startsWith('ecs-console') || !c.ipc) return fn();
  await c.ipc({ cmd: 'cpu-profile-start' });
  try {
    return await fn();
  } finally {
    const path = `${ctx.profileDir}/${label}.cpuprofile`;
    await c.ipc({ cmd: 'cpu-profile-stop', path }, 120_000);
    ctx.progress(`${label}: CPU profile of ${c.name}: ${path}`);
  }
}

/** How every scenario starts our service: the run's log level and node flags. */
export function oursOptions(ctx: Ctx, mode: OursOptions['mode']): OursOptions {
  return { logLevel: ctx.logLevel, mode, execArgv: ctx.nodeFlags };
}

/** One bulk round: throughput, and CPU per MB of each process in the path. */
export interface BulkRound {
  mbps: number;
  /** CPU ms per MB (10^6 bytes) relayed: the contender's processes (all threads; null: none), the backend, the client (the runner). */
  cpu: { contender: number | null; backend: number; client: number };
}

/** CPU ms of a process tree (all threads of each process; websockify's handler included). */
function treeCpuMs(pid: number): number {
  return processTree(pid).reduce((a, p) => a + cpuMs(p), 0);
}

/**
 * A fresh session of `c` on the stream backend; the client asks for `mib` MiB of framebuffer
 * updates and times them to the last byte. CPU is read from /proc (10 ms ticks) around the
 * transfer, with the session open (a forked handler's CPU counts).
 */
export async function bulkRound(c: Contender, backend: Backend, mib: number): Promise<BulkRound> {
  await c.prepare(1);
  const s = await BenchSession.open(c.next());
  try {
    const bytes = mib * STREAM_UNIT_BYTES;
    const c0 = c.pid ? treeCpuMs(c.pid) : 0;
    const b0 = cpuMs(backend.cp.pid!);
    const r0 = process.cpuUsage();
    const ms = await s.bulk(mib, bytes);
    const r = process.cpuUsage(r0);
    const mb = bytes / 1e6;
    return {
      mbps: mb / (ms / 1000),
      cpu: {
        contender: c.pid ? (treeCpuMs(c.pid) - c0) / mb : null,
        backend: (cpuMs(backend.cp.pid!) - b0) / mb,
        client: (r.user + r.system) / 1000 / mb,
      },
    };
  } finally {
    s.close();
  }
}
