/**
 * Logging: pino, one child logger per connection; JSON lines (level names, not pino's numbers),
 * or pino-pretty's one-line text for people at a terminal.
 * NOTE: never log a token, a secret key, a password, an Authorization or X-Auth-Token value, or a
 * URL's query string. Correlate console tokens with `tokenRef()` (first 8 hex of the sha256).
 */
import { createHash } from 'node:crypto';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import pinoPretty from 'pino-pretty';
import { isoTime } from './util/iso-time.js';

export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `json`: one JSON object a line (log shippers, journald); `pretty`: one readable line (terminals). */
export type LogFormat = 'json' | 'pretty';

/** The format when none is configured: pretty for a person at a terminal, JSON for everything else. */
export function defaultLogFormat(stdout: { isTTY?: boolean }): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
}

/** Field names whose values never reach a line: replaced with "[redacted]" (a second line of defence: no code logs these fields). */
const REDACTED = ['password', 'sk', 'secret', 'token', 'masterKey', 'authorization'] as const;
const CENSOR = '[redacted]';

/**
 * The same names one level down (`{ user: { password } }`; request headers are never logged, the
 * access log writes chosen fields only). NOTE: done here rather than with pino's `*.name` paths:
 * a wildcard path runs pino's redactor on every field of every line (a third of a line's cost in
 * the API's profile); this looks at the keys of object fields and copies only when one matches.
 */
export function redactNested(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in obj) {
    const v = obj[k];
    // `err` is left to its serializer (below), which keeps the message and stack a copy would lose.
    if (typeof v !== 'object' || v === null || Array.isArray(v) || (k === 'err' && v instanceof Error)) continue;
    let inner: Record<string, unknown> | undefined;
    for (const name of REDACTED) {
      if (Object.prototype.hasOwnProperty.call(v, name) && (v as Record<string, unknown>)[name] !== undefined) {
        inner ??= { ...(v as Record<string, unknown>) };
        inner[name] = CENSOR;
      }
    }
    if (inner) (out ??= { ...obj })[k] = inner;
  }
  return out ?? obj;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stdout by default. Tests pass a stream to capture everything. */
  destination?: DestinationStream;
  /** Name of this process's role, added to every line. */
  name?: string;
  /** JSON (default) or pretty text. */
  format?: LogFormat;
  /** Pretty format: colour the level (default: when the destination is a colour terminal). */
  colorize?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'ecs-console',
    // Top-level names through pino (a stringifier on those keys only, nothing on other fields);
    // one level down through the formatters below.
    redact: { paths: [...REDACTED], censor: CENSOR },
    base: { pid: process.pid },
    // pino's isoTime, with the date and time up to the second formatted once a second.
    timestamp: () => `,"time":"${isoTime(Date.now())}"`,
    // An error's own fields are one level down in its line, as pino's `*.name` paths had them.
    serializers: { err: (e: Error) => redactNested({ err: pino.stdSerializers.err(e) })['err'] },
    formatters: {
      // `"level":"warn"`, not `"level":40`: readable in journald and by grep, same order as pino's.
      level: (label: string) => ({ level: label }),
      log: redactNested,
      bindings: redactNested,
    },
  };
  if (opts.format !== 'pretty') return redactChildBindings(pino(options, opts.destination ?? turnBatched(pino.destination({ fd: 1, sync: false }))));
  // Redaction runs in pino, before the line reaches the formatter: pretty lines hide what JSON hides.
  const pretty = pinoPretty({
    destination: opts.destination ?? 1,
    sync: opts.destination === undefined ? false : true,
    colorize: opts.colorize ?? (opts.destination === undefined && process.stdout.isTTY === true && process.stdout.hasColors()),
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
  });
  return redactChildBindings(pino(options, pretty));
}

interface SonicLike {
  write(s: string): boolean;
  flush?(cb?: (err?: Error) => void): void;
  flushSync?(): void;
}

/**
 * The lines of one turn of the event loop in one write: a line waits for the end of the turn
 * (setImmediate), then every line of that turn goes to `inner` together. Each write to stdout is
 * a hand-over to libuv's thread pool (about 9 us of CPU for a 400-byte line, 1.4 us a line when
 * ten go together); a console setup logs two audit lines, and a busy turn carries many setups'.
 * NOTE: a process that exits (process.exit, an uncaught exception) writes what waits first: this
 * runs before pino's own flush at exit, which then writes everything synchronously.
 */
export class TurnBatchedStream {
  private buf = '';
  private immediate: NodeJS.Immediate | null = null;
  private readonly flushNow = (): void => this.drain();

  constructor(private readonly inner: SonicLike) {}

  write(line: string): boolean {
    this.buf += line;
    this.immediate ??= setImmediate(this.flushNow);
    return true;
  }

  /** Hands what waits to `inner` now. */
  drain(): void {
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    if (this.buf === '') return;
    const out = this.buf;
    this.buf = '';
    this.inner.write(out);
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.drain();
    if (this.inner.flush) this.inner.flush(cb);
    else cb?.();
  }

  flushSync(): void {
    this.drain();
    this.inner.flushSync?.();
  }
}

let exitDrains: Set<TurnBatchedStream> | null = null;

/** `inner` behind a TurnBatchedStream whose lines are written out when the process exits. */
function turnBatched(inner: SonicLike): TurnBatchedStream {
  const s = new TurnBatchedStream(inner);
  if (exitDrains === null) {
    const drains = (exitDrains = new Set());
    // Before pino's handler (registered when its destination was made), which flushes `inner` synchronously.
    process.prependListener('exit', () => {
      for (const d of drains) d.drain();
    });
  }
  exitDrains.add(s);
  return s;
}

/**
 * pino gives child loggers' bindings no formatter (`formatters.bindings` applies to the root's
 * only): a child's bindings are redacted one level down here, for every descendant (children are
 * created from their parent's prototype chain, which holds this `child`).
 */
function redactChildBindings(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, redactNested(bindings), options);
  } as Logger['child'];
  return root;
}

/** A logger that drops everything (tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** First 8 hex digits of sha256(token): enough to correlate, useless to an attacker. */
export function tokenRef(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 8);
}

/** A URL's path without its query string or fragment (query strings may carry tokens). */
export function pathOnly(url: string): string {
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}
