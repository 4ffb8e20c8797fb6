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
  if (opts.format !== 'pretty') return redactChildBindings(pino(options, opts.destination ?? pino.destination({ fd: 1, sync: false })));
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
