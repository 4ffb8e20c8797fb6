/**
 * The shared fuzz runner. A target is a fast-check property (an arbitrary and a check) plus a kept
 * corpus of inputs in test/fuzz/corpus/<target>/, replayed before anything random runs.
 *
 * Two modes, same targets:
 * - bounded (`npm test`): a fixed number of cases per target, about a minute for all of them;
 * - long (`npm run fuzz`, FUZZ_MODE=long): a share of FUZZ_SECONDS per target (default 600 s in all).
 *
 * Environment: FUZZ_SEED / FUZZ_PATH replay one failure (both printed when a property fails);
 * FUZZ_RUNS multiplies the bounded case counts; FUZZ_REPORT names a file that gets one JSON line
 * per target (the long run's summary is built from it); FUZZ_SAVE=1 (default in long mode) writes
 * a failing input into the corpus as found-<seed>.<ext>, for review.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Where the corpus lives: read from the source tree (tests run from dist/ at the repository root). */
export const CORPUS_DIR = join(process.cwd(), 'test', 'fuzz', 'corpus');

/** How a target's inputs are kept as files: hex bytes (`#` comment lines allowed) or JSON. */
export type CorpusCodec<T> =
  | { readonly ext: 'hex'; decode(bytes: Buffer): T; encode(input: T): Buffer }
  | { readonly ext: 'json'; decode(value: unknown): T; encode(input: T): unknown };

/** JSON corpus form of an input whose one Buffer field is kept as hex. */
export function hexFieldCodec<T extends { [k in K]: Buffer }, K extends string>(field: K): CorpusCodec<T> {
  return {
    ext: 'json',
    decode: (v) => {
      const o = v as Record<string, unknown>;
      return { ...o, [field]: Buffer.from(String(o[field]), 'hex') } as T;
    },
    encode: (i) => ({ ...i, [field]: i[field].toString('hex') }),
  };
}

/** Something run between batches of cases: the proxy still serves others, memory is bounded, ... */
export interface BatchCheck {
  /** Cases between two checks. */
  readonly everyCases: number;
  /** Throws when the property between cases does not hold. */
  check(): Promise<void>;
  /** Figures for the report (e.g. live memory after the first and the last batch). */
  notes?(): Record<string, string | number>;
}

export interface FuzzTarget<T> {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /**
   * Runs one input; throws when the property does not hold; returns the outcome's label for the
   * statistics (e.g. `closed 4400`, `rejected BACKEND_PROTOCOL`). Labels starting with `known:`
   * name the symptom of a bug found earlier (docs/reliability.md); the property fails on them.
   */
  check(input: T): string | Promise<string>;
  readonly codec: CorpusCodec<T>;
  /** Cases in the bounded run. */
  readonly boundedRuns: number;
  /** Share of the long run's total time (the shares of all targets add up to about 1). */
  readonly longShare: number;
  /** Longest one case may take before it counts as a hang. */
  readonly caseTimeoutMs: number;
  readonly between?: BatchCheck;
}

/**
 * One kept input. `expect` is the outcome label it must give (when set); `todo` marks an input
 * that fails because of an open bug (the reason says which).
 */
export interface CorpusEntry {
  readonly file: string;
  readonly why: string;
  readonly expect: string | undefined;
  readonly todo: string | undefined;
  readonly text: string;
}

export interface FuzzResult {
  target: string;
  mode: 'bounded' | 'long';
  cases: number;
  corpus: number;
  ms: number;
  seeds: number[];
  outcomes: Record<string, number>;
  notes?: Record<string, string | number>;
  failed: boolean;
  error?: string;
}

export const fuzzMode = (): 'bounded' | 'long' => (process.env['FUZZ_MODE'] === 'long' ? 'long' : 'bounded');

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

// ---- corpus

export function corpusEntries(target: string): CorpusEntry[] {
  const dir = join(CORPUS_DIR, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.hex') || f.endsWith('.json')).sort().map((file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    if (file.endsWith('.json')) {
      const v = JSON.parse(text) as { why?: unknown; expect?: unknown; todo?: unknown };
      const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
      return { file, why: str(v.why) ?? '', expect: str(v.expect), todo: str(v.todo), text };
    }
    // Hex files: `# why`, `# expect: label` and `# todo: reason` comment lines.
    const comments = text.split('\n').filter((l) => l.startsWith('#')).map((l) => l.slice(1).trim());
    const field = (name: string): string | undefined => comments.find((c) => c.startsWith(`${name}:`))?.slice(name.length + 1).trim();
    return { file, why: comments.filter((c) => !/^(expect|todo):/.test(c)).join(' '), expect: field('expect'), todo: field('todo'), text };
  });
}

export function decodeEntry<T>(codec: CorpusCodec<T>, e: CorpusEntry): T {
  if (codec.ext === 'hex') {
    const hex = e.text.split('\n').filter((l) => !l.startsWith('#')).join('').replace(/\s+/g, '');
    if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error(`${e.file}: not hex`);
    return codec.decode(Buffer.from(hex, 'hex'));
  }
  return codec.decode((JSON.parse(e.text) as { input: unknown }).input);
}

/** A corpus file's text for `input`: hex in lines of 32 bytes, or JSON with `why` and `input`. */
export function encodeEntry<T>(codec: CorpusCodec<T>, input: T, why: string): string {
  if (codec.ext === 'hex') {
    const hex = codec.encode(input).toString('hex').replace(/(.{64})/g, '$1\n').trim();
    return `# ${why.replace(/\n/g, ' ')}\n${hex}\n`;
  }
  return JSON.stringify({ why, input: codec.encode(input) }, null, 1) + '\n';
}

// ---- process health

let gcFn: (() => void) | undefined;

/** Full garbage collection, with or without --expose-gc (a fresh context exposes `gc` once the flag is set). */
export function collectGarbage(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g) gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  gcFn();
}

/** JavaScript heap plus Buffer memory (Buffers live outside the heap), after a full collection. */
export function liveBytes(): number {
  collectGarbage();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Collects unhandled rejections and uncaught exceptions while fuzzing: either is a failure. */
export class ProcessWatch {
  readonly problems: string[] = [];
  private readonly onRejection = (reason: unknown): void => void this.problems.push(`unhandled rejection: ${errorText(reason)}`);
  private readonly onException = (err: unknown): void => void this.problems.push(`uncaught exception: ${errorText(err)}`);
  start(): this {
    process.on('unhandledRejection', this.onRejection);
    process.on('uncaughtExceptionMonitor', this.onException);
    return this;
  }
  stop(): void {
    process.off('unhandledRejection', this.onRejection);
    process.off('uncaughtExceptionMonitor', this.onException);
  }
  /** Throws when anything happened since the last call. */
  assertQuiet(): void {
    if (this.problems.length > 0) throw new Error(this.problems.splice(0).join('\n'));
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
}

// ---- running

/** A between-batch check that takes longer than this has hung (a control session, a drain). */
const BETWEEN_TIMEOUT_MS = 60_000;

/** Rejects when `p` has not settled within `ms`: a hang becomes a failure that names what hung. */
async function withTimeout<R>(p: Promise<R>, ms: number, what: string): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function randomSeed(): number {
  return (Math.random() * 0x7fffffff) | 0;
}

function formatOutcomes(outcomes: Record<string, number>): string {
  return Object.entries(outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ');
}

/**
 * Runs the property in batches of `between.everyCases` cases (one seed each, printed), with the
 * between-batch check after each batch, until the bounded count or the long budget is used up.
 */
export async function runProperty<T>(target: FuzzTarget<T>): Promise<FuzzResult> {
  const mode = fuzzMode();
  const started = Date.now();
  const outcomes: Record<string, number> = {};
  let cases = 0;
  const seeds: number[] = [];
  const fixedSeed = envNumber('FUZZ_SEED');
  const path = process.env['FUZZ_PATH'];
  const total = mode === 'long' ? Infinity : Math.max(1, Math.round(target.boundedRuns * (envNumber('FUZZ_RUNS') ?? 1)));
  const deadline = mode === 'long' ? started + (envNumber('FUZZ_SECONDS') ?? 600) * 1000 * target.longShare : Infinity;
  const batch = target.between?.everyCases ?? (mode === 'long' ? 2000 : total);
  // Shrinking re-runs cases; over sockets a failing case may cost a timeout each time. Past the
  // budget, candidates count as passing, which ends shrinking with the smallest failure so far.
  const shrinkBudgetMs = (envNumber('FUZZ_SHRINK_SECONDS') ?? 60) * 1000;
  let firstFailureAt: number | undefined;
  const property = fc.asyncProperty(target.arbitrary, async (input) => {
    if (firstFailureAt !== undefined && Date.now() - firstFailureAt > shrinkBudgetMs) return;
    // Past the long run's deadline the remaining runs of the batch pass at once. (fast-check's own
    // interruptAfterTimeLimit would abandon the case in flight, which then meets a stopping stack.)
    if (firstFailureAt === undefined && Date.now() > deadline) return;
    try {
      const label = await target.check(input);
      // The symptom of a bug the fuzzers once found (all fixed): seen again, it is a regression.
      if (label.startsWith('known:')) throw new Error(`regression of a fixed bug: ${label}`);
      if (firstFailureAt !== undefined) return;
      cases++;
      outcomes[label] = (outcomes[label] ?? 0) + 1;
    } catch (e) {
      if (firstFailureAt === undefined) {
        firstFailureAt = Date.now();
        console.log(`fuzz ${target.name}: failure after ${cases} cases, shrinking for up to ${shrinkBudgetMs / 1000} s: ${(e as Error).message?.split('\n')[0]}`);
      }
      throw e;
    }
  });
  let failure: string | undefined;
  while (failure === undefined && cases < total && Date.now() < deadline) {
    const seed = fixedSeed ?? randomSeed();
    seeds.push(seed);
    const runs = Math.min(batch, total - cases);
    const details = await fc.check(property, {
      seed,
      ...(path !== undefined ? { path } : {}),
      numRuns: runs === Infinity ? batch : runs,
      plugins: [fc.timeout(target.caseTimeoutMs)],
    });
    if (details.failed) {
      failure = failureText(target, details as fc.RunDetails<[T]>);
      break;
    }
    try {
      if (target.between) await withTimeout(target.between.check(), BETWEEN_TIMEOUT_MS, 'the between-batch check');
    } catch (e) {
      failure = `between-batch check failed after ${cases} cases (batch seed ${seed}): ${(e as Error).message}`;
    }
    if (fixedSeed !== undefined || path !== undefined) break;
  }
  const notes = target.between?.notes?.();
  const result: FuzzResult = {
    target: target.name, mode, cases, corpus: corpusEntries(target.name).length, ms: Date.now() - started, seeds, outcomes,
    ...(notes ? { notes } : {}), failed: failure !== undefined, ...(failure ? { error: failure } : {}),
  };
  report(result);
  if (failure !== undefined) throw new Error(`fuzz ${target.name}: ${failure}`);
  return result;
}

function failureText<T>(target: FuzzTarget<T>, details: fc.RunDetails<[T]>): string {
  const input = details.counterexample?.[0];
  const err = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  let saved = '';
  if (input !== undefined) {
    const text = encodeEntry(target.codec, input, `found by seed ${details.seed}: ${err.split('\n')[0]!.slice(0, 200)}`);
    if (process.env['FUZZ_SAVE'] === '1' || (fuzzMode() === 'long' && process.env['FUZZ_SAVE'] !== '0')) {
      const dir = join(CORPUS_DIR, target.name);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `found-${details.seed}.${target.codec.ext}`);
      writeFileSync(file, text);
      saved = `\nsaved to ${file}`;
    }
    saved = `\ncounterexample (corpus form):\n${text.slice(0, 4000)}${saved}`;
  }
  return `property failed after ${details.numRuns} runs, ${details.numShrinks} shrinks\n` +
    `replay: FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath ?? ''}\n${err}${saved}`;
}

function report(r: FuzzResult): void {
  const line = `fuzz ${r.target} [${r.mode}]: ${r.cases} cases + ${r.corpus} corpus in ${r.ms} ms` +
    ` (seeds ${r.seeds.slice(0, 4).join(', ')}${r.seeds.length > 4 ? ', ...' : ''})${r.failed ? ' FAILED' : ''} | ${formatOutcomes(r.outcomes)}` +
    (r.notes ? ` | ${Object.entries(r.notes).map(([k, v]) => `${k} ${v}`).join(', ')}` : '');
  console.log(line);
  const file = process.env['FUZZ_REPORT'];
  if (file) appendFileSync(file, JSON.stringify(r) + '\n');
}

/**
 * Registers a target's tests: one per corpus file (todo when the file says so), then the property.
 * `make` is called when the tests run, so that a target may need a stack started in `before`.
 */
export function registerFuzzTests<T>(name: string, make: () => FuzzTarget<T>): void {
  describe(`fuzz ${name}`, () => {
    for (const e of corpusEntries(name)) {
      test(`corpus ${e.file}${e.why ? `: ${e.why.slice(0, 80)}` : ''}`, { todo: e.todo }, async () => {
        const t = make();
        const label = await withTimeout(Promise.resolve(t.check(decodeEntry(t.codec, e))), t.caseTimeoutMs, e.file);
        // A kept input that shows an open bug is a todo entry: replayed, it must give the right answer.
        assert.ok(!label.startsWith('known:'), `${e.file}: ${label}`);
        if (e.expect !== undefined) assert.equal(label, e.expect, `${e.file}: outcome`);
      });
    }
    test('property', async () => {
      await runProperty(make());
    });
  });
}

/** Starts an environment (a stack) before the tests of the enclosing suite and stops it after; returns its getter. */
export function useEnv<E extends { stop(): Promise<void> }>(start: () => Promise<E>): () => E {
  let env: E | undefined;
  before(async () => {
    env = await start();
  });
  after(() => env?.stop());
  return () => {
    assert.ok(env, 'the environment has not started');
    return env;
  };
}

/** Like {@link registerFuzzTests}, for a target that needs an environment (see {@link useEnv}). */
export function registerFuzzTestsWith<E extends { stop(): Promise<void> }, T>(name: string, start: () => Promise<E>, make: (env: E) => FuzzTarget<T>): void {
  const env = useEnv(start);
  let target: FuzzTarget<T> | undefined;
  registerFuzzTests(name, () => (target ??= make(env())));
}
