/**
 * The API load generator, in its own process: `connections` keep-alive connections, each sending
 * remote_console calls back to back, AK/SK-signed afresh per request (or unsigned, for the bare
 * server: the same signing work is done and the headers sent, so both servers get identical
 * requests from an identically loaded generator). Counts what completes in the measured window
 * after a warm-up, and reports its own CPU use so that a saturated generator shows.
 */
import { Agent } from 'node:http';
import { childArgs } from './lib/child-ipc.js';
import { REMOTE_CONSOLE_BODY, post } from './lib/api-client.js';

export interface ApiLoadArgs {
  port: number;
  path: string;
  ak: string;
  sk: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

export interface ApiLoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  statuses: Record<string, number>;
  /** The generator's CPU use during the window, in % of one core. */
  generatorCpuPct: number;
}

const a = childArgs<ApiLoadArgs>();
const agent = new Agent({ keepAlive: true, maxSockets: a.connections });
const creds = { ak: a.ak, sk: a.sk };
const start = performance.now();
const windowStart = start + a.warmupMs;
const end = windowStart + a.durationMs;
const latencies: number[] = [];
const statuses: Record<string, number> = {};
let errors = 0;
let cpuAtWindow: NodeJS.CpuUsage | null = null;
const cpuTimer = setTimeout(() => (cpuAtWindow = process.cpuUsage()), a.warmupMs);

async function worker(): Promise<void> {
  while (performance.now() < end) {
    const t0 = performance.now();
    let status = 0;
    try {
      status = (await post(agent, a.port, a.path, REMOTE_CONSOLE_BODY, creds)).status;
    } catch {
      status = -1;
    }
    const t1 = performance.now();
    // Counted by completion time: a request in flight across the window's start counts once, inside.
    if (t1 >= windowStart && t1 <= end) {
      latencies.push(t1 - t0);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== 200) errors++;
    }
  }
}

await Promise.all(Array.from({ length: a.connections }, worker));
clearTimeout(cpuTimer);
const cpu = process.cpuUsage(cpuAtWindow ?? undefined);
agent.destroy();
latencies.sort((x, y) => x - y);
const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
const result: ApiLoadResult = {
  requests: latencies.length,
  rps: latencies.length / (a.durationMs / 1000),
  p50Ms: pct(50),
  p99Ms: pct(99),
  errors,
  statuses,
  generatorCpuPct: ((cpu.user + cpu.system) / 1000 / a.durationMs) * 100,
};
process.send?.({ type: 'result', ...result }, () => process.exit(0));
