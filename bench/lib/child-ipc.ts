/**
 * The child side of the runner's IPC: answers `{id, cmd}` requests, and ends the process when the
 * runner goes away (IPC disconnect) or after a lifetime cap, so that no child outlives a run.
 */
import { writeHeapSnapshot } from 'node:v8';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';

export type Handler = (msg: Record<string, unknown>) => unknown | Promise<unknown>;

/** No run takes this long: a child still alive then was forgotten, and exits. */
const LIFETIME_MS = 20 * 60_000;

/**
 * Serves the runner's commands. Built in: `gc` (needs --expose-gc), `mem`, `heap-snapshot {path}`,
 * `cpu-profile-start`, `cpu-profile-stop {path}`, `alloc-profile-start`, `alloc-profile-stop {path}`. `onExit` runs before the process exits.
 */
export function serveIpc(handlers: Record<string, Handler>, onExit: () => Promise<void> = async () => {}): void {
  let inspector: Session | null = null;
  const begin = async (steps: Array<[string, object?]>): Promise<Record<string, unknown>> => {
    if (inspector) throw new Error('a profile is already running');
    inspector = new Session();
    inspector.connect();
    for (const [method, params] of steps) await inspector.post(method as never, params as never);
    return {};
  };
  const end = async (method: 'Profiler.stop' | 'HeapProfiler.stopSampling', path: string): Promise<Record<string, unknown>> => {
    if (!inspector) throw new Error('no profile running');
    const { profile } = (await inspector.post(method as never)) as unknown as { profile: unknown };
    writeFileSync(path, JSON.stringify(profile));
    inspector.disconnect();
    inspector = null;
    return { path };
  };
  const builtIn: Record<string, Handler> = {
    gc: () => {
      (globalThis as { gc?: () => void }).gc?.();
      return {};
    },
    mem: () => ({ ...process.memoryUsage() }),
    'heap-snapshot': (m) => ({ path: writeHeapSnapshot(String(m['path'])) }),
    // 100 us sampling: fine enough for handlers of a few microseconds.
    'cpu-profile-start': () => begin([['Profiler.enable'], ['Profiler.setSamplingInterval', { interval: 100 }], ['Profiler.start']]),
    'cpu-profile-stop': (m) => end('Profiler.stop', String(m['path'])),
    // Sampling allocation profile, keeping samples of objects the GC has freed since: shows what
    // allocates, not only what stays (the cause of frequent collections).
    'alloc-profile-start': () => begin([['HeapProfiler.enable'], ['HeapProfiler.startSampling', {
      samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
    }]]),
    'alloc-profile-stop': (m) => end('HeapProfiler.stopSampling', String(m['path'])),
  };
  const all = { ...builtIn, ...handlers };
  process.on('message', (raw) => {
    const msg = raw as Record<string, unknown>;
    const h = all[String(msg['cmd'])];
    const reply = (body: Record<string, unknown>): void => {
      if (process.connected) process.send?.({ id: msg['id'], ...body });
    };
    if (!h) return reply({ error: `unknown command ${String(msg['cmd'])}` });
    Promise.resolve()
      .then(() => h(msg))
      .then((r) => reply((r ?? {}) as Record<string, unknown>), (e: unknown) => reply({ error: (e as Error)?.message ?? String(e) }));
  });
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    const hard = setTimeout(() => process.exit(0), 5000);
    hard.unref();
    onExit().finally(() => process.exit(0));
  };
  process.on('disconnect', exit);
  process.on('SIGTERM', exit);
  setTimeout(exit, LIFETIME_MS).unref();
}

/** Tells the runner this child is up (with its ports and anything else it needs). */
export function announce(body: Record<string, unknown>): void {
  process.send?.({ type: 'ready', ...body });
}

/** Parses the JSON the runner passes as the first argument. */
export function childArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}
