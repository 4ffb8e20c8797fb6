/** A mutex per key, in this process: waiters run one at a time in arrival order. */

/** Resolves when `p` settles or rejects with the signal's reason when it aborts first. */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class KeyedMutex {
  /** Per key, the promise the next waiter waits for (settles when every earlier holder is done). */
  private readonly tails = new Map<string, Promise<void>>();

  /** Keys with a holder or waiters (tests and metrics). */
  get size(): number {
    return this.tails.size;
  }

  /**
   * Takes `key` once every earlier holder is done; resolves with the function that gives it back
   * (calling it again does nothing). A waiter whose signal aborts gives up its place at once
   * (rejects with the signal's reason); those behind it still wait for the holder in front.
   */
  async acquire(key: string, signal?: AbortSignal): Promise<() => void> {
    const before = this.tails.get(key);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    // A free key (the common case) is taken at once: the next waiter waits for this holder alone.
    const tail = before === undefined ? mine : before.then(() => mine);
    this.tails.set(key, tail);
    const release = (): void => {
      done();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    if (before === undefined && !signal?.aborted) return release;
    try {
      await (signal ? untilAborted(before ?? Promise.resolve(), signal) : before);
    } catch (e) {
      release();
      throw e;
    }
    return release;
  }

  /** Runs `fn` alone for `key` (see `acquire`). */
  async run<T>(key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key, signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
