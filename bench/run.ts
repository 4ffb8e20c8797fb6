/**
 * `npm run bench [-- --quick] [--only idle,setup,rtt,bulk,api,hostile,login,serial,recording,sync,fleet] [--profile] [--log-level L] [--node-flags "F"]`
 *
 * Runs each scenario with ecs-console and its peers in the same run, prints a table per scenario
 * and the goals, and writes bench/results/latest.json. Exits 0 when every scenario completed
 * (missed goals are reported, not failures), 1 when a scenario could not run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, startBackend } from './lib/contenders.js';
import { cpuMs, fdLimit, installCleanup, machineBusyMs } from './lib/procs.js';
import { table } from './lib/stats.js';
import { apiScenario } from './scenarios/api.js';
import { bulkScenario } from './scenarios/bulk.js';
import { fleetScenario } from './scenarios/fleet.js';
import { hostileScenario } from './scenarios/hostile.js';
import { type Ctx, FULL, type Goal, QUICK, type ScenarioResult } from './scenarios/common.js';
import { idleScenario } from './scenarios/idle.js';
import { loginScenario } from './scenarios/login.js';
import { recordingScenario } from './scenarios/recording.js';
import { roundTripScenario } from './scenarios/round-trip.js';
import { setupScenario } from './scenarios/setup.js';
import { serialScenario } from './scenarios/serial.js';
import { syncScenario } from './scenarios/sync.js';

const SCENARIOS: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  idle: idleScenario,
  setup: setupScenario,
  rtt: roundTripScenario,
  bulk: bulkScenario,
  api: apiScenario,
  hostile: hostileScenario,
  login: loginScenario,
  serial: serialScenario,
  recording: recordingScenario,
  sync: syncScenario,
  fleet: fleetScenario,
};

const USAGE = `usage: node dist/bench/run.js [--quick] [--only ${Object.keys(SCENARIOS).join(',')}] [--profile] [--log-level L] [--node-flags "F"] [--out FILE]
  --quick          smaller plan (about 45 s)
  --only a,b       run only these scenarios, in this order (e.g. --only bulk)
  --profile        CPU profiles / heap snapshot of ecs-console into bench/results/profiles/
  --log-level L    ecs-console's log level (default info)
  --node-flags F   extra node flags for ecs-console's process only
  --out FILE       where the JSON results go (default bench/results/latest.json)
`;

function parseArgs(argv: string[]): { quick: boolean; only: string[]; profile: boolean; logLevel: string; nodeFlags: string[]; out: string } {
  const o = { quick: false, only: Object.keys(SCENARIOS), profile: false, logLevel: 'info', nodeFlags: [] as string[], out: join(BENCH_DIR, '..', '..', 'bench', 'results', 'latest.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq !== -1) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    if (a === '--quick') o.quick = true;
    else if (a === '--profile') o.profile = true;
    else if (a.startsWith('--only')) o.only = value().split(',').map((s) => s.trim());
    else if (a.startsWith('--log-level')) o.logLevel = value();
    else if (a.startsWith('--node-flags')) o.nodeFlags = value().split(/\s+/).filter(Boolean);
    else if (a.startsWith('--out')) o.out = value();
    else throw new Error(`unknown argument ${a} (expected --quick, --only a,b, --profile, --log-level L, --node-flags "F", --out FILE)`);
  }
  for (const s of o.only) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s} (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return o;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

installCleanup();
const opts = parseArgs(process.argv.slice(2));
const plan = opts.quick ? QUICK : FULL;
// The whole run stops by itself, whatever hangs: children are killed by the exit handler.
const HARD_LIMIT_MS = (opts.quick ? 4 : 15) * 60_000 * (opts.profile ? 2 : 1);
setTimeout(() => {
  process.stderr.write(`bench: still running after ${HARD_LIMIT_MS / 60_000} minutes: giving up\n`);
  process.exit(1);
}, HARD_LIMIT_MS).unref();

const started = Date.now();
const busyAtStart = machineBusyMs();
const oursAtStart = cpuMs(process.pid);
const logDir = mkdtempSync(join(tmpdir(), 'ecs-console-bench-'));
let keepLogs = false;
// Logs, databases and scripts of the run live here; kept only when a scenario failed.
process.on('exit', () => {
  if (!keepLogs) rmSync(logDir, { recursive: true, force: true });
});
const resultsDir = join(opts.out, '..');
mkdirSync(resultsDir, { recursive: true });
const profileDir = opts.profile ? join(resultsDir, 'profiles') : null;
if (profileDir) mkdirSync(profileDir, { recursive: true });
const progress = (msg: string): void => void process.stderr.write(`  [${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${msg}\n`);

const meta = {
  date: new Date().toISOString(),
  commit: git(['rev-parse', 'HEAD']),
  dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
  node: process.version,
  kernel: release(),
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? '',
  memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  fdLimit: fdLimit(process.pid),
  websockify: '0.10 (Debian /usr/bin/websockify)',
  quick: opts.quick,
  profile: opts.profile,
  logLevel: opts.logLevel,
  nodeFlags: opts.nodeFlags,
  plan,
};
process.stdout.write(`ecs-console benchmarks${opts.quick ? ' (quick)' : ''}: ${meta.cpus} cores, ${meta.memoryGiB} GiB, Node ${meta.node}, Linux ${meta.kernel}, ` +
  `commit ${meta.commit.slice(0, 12)}${meta.dirty ? ' (with uncommitted changes)' : ''}${opts.nodeFlags.length ? `, ecs-console run with ${opts.nodeFlags.join(' ')}` : ''}` +
  `${opts.profile ? ', PROFILING (figures are not comparable)' : ''}\n\n`);

const backend = await startBackend(logDir);
const ctx: Ctx = { plan, backend, logDir, logLevel: opts.logLevel, nodeFlags: opts.nodeFlags, profileDir, progress };
const results: ScenarioResult[] = [];
const failed: Array<{ scenario: string; error: string }> = [];
for (const name of opts.only) {
  progress(`${name}: starting`);
  try {
    const r = await SCENARIOS[name]!(ctx);
    results.push(r);
    process.stdout.write(`\n${r.text}\n\n`);
  } catch (e) {
    const error = (e as Error)?.stack ?? String(e);
    failed.push({ scenario: name, error });
    process.stderr.write(`bench: ${name} failed: ${error}\n`);
  }
}
await backend.stop();
// CPU that processes outside this run used meanwhile: a shared machine makes figures noisy.
const elapsedMs = Date.now() - started;
const otherCpuPct = Math.max(0, ((machineBusyMs() - busyAtStart - (cpuMs(process.pid) - oursAtStart)) / elapsedMs) * 100);
const machine = { otherCpuPctOfOneCore: Math.round(otherCpuPct), loadavgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) };

const goals: Goal[] = results.flatMap((r) => r.goals);
process.stdout.write(`${table(['Goal', 'measured', 'met'], goals.map((g) => [`${g.scenario}: ${g.goal}`, g.measured, g.met ? 'yes' : 'NO']), 'lll')}\n`);
writeFileSync(opts.out, JSON.stringify({ meta, machine, seconds: (Date.now() - started) / 1000, goals, failed, scenarios: Object.fromEntries(results.map((r) => [r.name, r.data])) }, null, 2) + '\n');
process.stdout.write(`\n${goals.filter((g) => g.met).length} of ${goals.length} goals met; ${(elapsedMs / 1000).toFixed(0)} s; ` +
  `other processes used ${machine.otherCpuPctOfOneCore}% of one core meanwhile${machine.otherCpuPctOfOneCore > 20 ? ' (a busy machine: figures are noisy)' : ''}; results in ${opts.out}\n`);
if (failed.length > 0) {
  process.stdout.write(`${failed.length} scenario(s) failed: ${failed.map((f) => f.scenario).join(', ')}; logs kept in ${logDir}\n`);
  keepLogs = true;
  process.exit(1);
}
process.exit(0);
