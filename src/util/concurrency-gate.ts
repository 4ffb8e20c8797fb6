/**
 * Bounded concurrency for expensive work (password hashing): at most `maxRunning` tasks at once,
 * at most `maxQueued` waiting (first come, first served), and at most `maxPerKey` running or
 * waiting per key (a source address), so that one client cannot fill the queue. Beyond either
 * bound a task is refused at once with GateFullError: a caller never waits behind an unbounded line.
 * Priority tasks (a user logging in from where it logged in before) have a queue of their own,
 * as long, served first: a flood of strangers cannot crowd them out.
 */

export class GateFullError extends Error {
  constructor(readonly reason: 'busy' | 'key') {
    super(reason === 'busy' ? 'every slot and queue place is taken' : 'this key has as many tasks as it may');
    this.name = 'GateFullError';
  }
}

export interface GateOptions {
  readonly maxRunning: number;
  readonly maxQueued: number;
  readonly maxPerKey: number;
}

export class ConcurrencyGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly waitingFirst: Array<() => void> = [];
  private readonly perKey = new Map<string, number>();

  constructor(private readonly opts: GateOptions) {}

  /** Tasks running and waiting now. */
  get load(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length + this.waitingFirst.length };
  }

  /** Runs `task` once a slot is free; rejects with GateFullError at once when it may not wait. */
  async run<T>(key: string, task: () => Promise<T>, priority = false): Promise<T> {
    const mine = this.perKey.get(key) ?? 0;
    if (mine >= this.opts.maxPerKey) throw new GateFullError('key');
    const line = priority ? this.waitingFirst : this.waiting;
    if (this.running >= this.opts.maxRunning && line.length >= this.opts.maxQueued) throw new GateFullError('busy');
    this.perKey.set(key, mine + 1);
    try {
      if (this.running >= this.opts.maxRunning) await new Promise<void>((resolve) => line.push(resolve));
      else this.running++;
      try {
        return await task();
      } finally {
        // The slot passes straight to the next in line (running stays the same), or frees up.
        const next = this.waitingFirst.shift() ?? this.waiting.shift();
        if (next) next();
        else this.running--;
      }
    } finally {
      const left = (this.perKey.get(key) ?? 1) - 1;
      if (left === 0) this.perKey.delete(key);
      else this.perKey.set(key, left);
    }
  }
}
