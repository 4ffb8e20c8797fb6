/**
 * Child processes of the benchmark: each one is started in its own process group, so that it and
 * everything it forks (websockify forks a process per connection) can be ended together by group
 * id. Every group is killed when the runner exits, whatever the reason.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';

const groups = new Set<ChildProcess>();

function killGroup(cp: ChildProcess, signal: NodeJS.Signals): void {
  if (cp.pid === undefined) return;
  try {
    // A process group id is not reused while any member lives, so this reaches only our processes.
    process.kill(-cp.pid, signal);
  } catch {
    /* already gone */
  }
}

function track(cp: ChildProcess): ChildProcess {
  groups.add(cp);
  return cp;
}

let cleanupInstalled = false;

/** Kills every child group on exit, Ctrl-C, SIGTERM, SIGHUP or an uncaught error. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const killAll = (): void => {
    for (const cp of groups) killGroup(cp, 'SIGKILL');
    groups.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping every child process\n`);
      killAll();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`bench: ${e.stack ?? e}\n`);
    killAll();
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`bench: unhandled rejection: ${(e as Error)?.stack ?? e}\n`);
    killAll();
    process.exit(1);
  });
}

export interface NodeChildOptions {
  args?: string[];
  execArgv?: string[];
  /** File receiving the child's stdout and stderr. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts a compiled bench script with an IPC channel, in its own process group. */
export function forkChild(modulePath: string, o: NodeChildOptions): ChildProcess {
  const fd = openSync(o.logFile, 'a');
  return track(fork(modulePath, o.args ?? [], {
    detached: true,
    execArgv: o.execArgv ?? [],
    stdio: ['ignore', fd, fd, 'ipc'],
    env: o.env ?? process.env,
  }));
}

/**
 * Starts a program in its own process group. With `setpriv --pdeathsig`, the program is killed by
 * the kernel even when the runner is killed with SIGKILL (no exit handler runs then).
 */
export function spawnChild(command: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  return track(spawn('setpriv', ['--pdeathsig', 'KILL', command, ...args], { detached: true, stdio: ['ignore', fd, fd] }));
}

/** SIGTERM to the group, then SIGKILL after `graceMs` (the group's leftovers get it too). */
export async function stopChild(cp: ChildProcess, graceMs = 2000): Promise<void> {
  if (cp.exitCode === null && cp.signalCode === null) {
    killGroup(cp, 'SIGTERM');
    const exited = once(cp, 'exit').then(() => true);
    const timedOut = new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref());
    await Promise.race([exited, timedOut]);
  }
  killGroup(cp, 'SIGKILL');
  groups.delete(cp);
}

let nextId = 1;

/** Sends a command to a bench child and waits for its answer (`{id, ...}`). */
export function ask<T = Record<string, unknown>>(cp: ChildProcess, msg: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cp.off('message', onMessage);
      reject(new Error(`child ${cp.pid} did not answer ${JSON.stringify(msg.cmd)} in ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: unknown): void => {
      const r = m as { id?: number; error?: string };
      if (r.id !== id) return;
      clearTimeout(timer);
      cp.off('message', onMessage);
      if (r.error) reject(new Error(r.error));
      else resolve(m as T);
    };
    cp.on('message', onMessage);
    cp.send({ ...msg, id });
  });
}

/** Waits for the child's first message of `type` (children announce `ready` with their ports). */
export function waitFor<T = Record<string, unknown>>(cp: ChildProcess, type: string, timeoutMs = 30_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`child ${cp.pid} did not send ${type} in ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: unknown): void => {
      if ((m as { type?: string }).type === type) done(null, m as T);
    };
    const onExit = (code: number | null): void => done(new Error(`child ${cp.pid} exited (${code}) before sending ${type}`));
    const done = (e: Error | null, v?: T): void => {
      clearTimeout(timer);
      cp.off('message', onMessage);
      cp.off('exit', onExit);
      if (e) reject(e);
      else resolve(v as T);
    };
    cp.on('message', onMessage);
    cp.on('exit', onExit);
  });
}

// ---- /proc readers (Linux)

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident set size in KiB (VmRSS): what `top` shows, shared pages counted in full. */
export function rssKiB(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** Proportional set size in KiB: shared pages divided among their sharers (fair sum over forks). */
export function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** The soft limit of open files of a process. */
export function fdLimit(pid: number): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : 1024;
  } catch {
    return 1024;
  }
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields start after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/**
 * CPU time (user + system) in ms of a process and of its children it has reaped (websockify's
 * handlers count once they exit), from /proc/<pid>/stat.
 */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // proc(5): utime, stime, cutime, cstime are fields 14-17, the 12th-15th after the command name;
    // in clock ticks of 10 ms (CLK_TCK 100).
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU time in ms of a process tree, summed over every thread of every process, from
 * /proc/<pid>/task/<tid>/schedstat (time on a CPU in ns, sched(7)): exact where `cpuMs` counts
 * 10 ms ticks, for short measurements (a few ms per round). Reaped children are not counted: use
 * it while the processes measured are alive.
 */
export function treeRunMs(pid: number): number {
  let ns = 0;
  for (const p of processTree(pid)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        ns += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* exited meanwhile */
      }
    }
  }
  return ns / 1e6;
}

/** Runs a program to its end (it must stop by itself) and resolves with its stdout. */
export function runToEnd(command: string, args: string[], timeoutMs: number): Promise<string> {
  const cp = track(spawn('setpriv', ['--pdeathsig', 'KILL', command, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  cp.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  cp.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => killGroup(cp, 'SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    cp.on('error', reject);
    cp.on('exit', (code) => {
      clearTimeout(timer);
      groups.delete(cp);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} exited with ${code}: ${err.trim().slice(0, 500)}`));
    });
  });
}

/** Busy CPU time of the whole machine in ms (all cores), from /proc/stat. */
export function machineBusyMs(): number {
  const f = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '').split(/\s+/).map(Number);
  // proc(5): user nice system idle iowait irq softirq steal guest guest_nice. Busy: user to softirq
  // but idle and iowait (steal is time the host took; guest time is already counted in user).
  const busy = f.reduce((a, x, i) => (i === 3 || i === 4 || i > 6 ? a : a + (x || 0)), 0);
  return busy * 10;
}
