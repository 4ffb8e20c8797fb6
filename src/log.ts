/**
 * Logging: pino, one child logger per connection; JSON lines (level names, not pino's numbers),
 * or pino-pretty's one-line text for people at a terminal.
 * NOTE: never log a token, a secret key, a password, an Authorization or X-Auth-Token value, or a
 * URL's query string. Correlate console tokens with `tokenRef()` (first 8 hex of the sha256).
 */
import { createHash } from 'node:crypto';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import pinoPretty from 'pino-pretty';

export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `json`: one JSON object a line (log shippers, journald); `pretty`: one readable line (terminals). */
export type LogFormat = 'json' | 'pretty';

/** The format when none is configured: pretty for a person at a terminal, JSON for everything else. */
export function defaultLogFormat(stdout: { isTTY?: boolean }): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
}

/**
 * Paths pino replaces with "[redacted]": a second line of defence (no code logs these fields),
 * kept short because every path costs time on every line.
 */
const REDACT_PATHS = [
  'password',
  'sk',
  'secret',
  'token',
  'masterKey',
  'authorization',
  // One level down; request headers are never logged (the access log writes chosen fields only).
  '*.password',
  '*.sk',
  '*.secret',
  '*.token',
  '*.authorization',
];

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
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
    // `"level":"warn"`, not `"level":40`: readable in journald and by grep, same order as pino's.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (opts.format !== 'pretty') return pino(options, opts.destination ?? pino.destination({ fd: 1, sync: false }));
  // Redaction runs in pino, before the line reaches the formatter: pretty lines hide what JSON hides.
  const pretty = pinoPretty({
    destination: opts.destination ?? 1,
    sync: opts.destination === undefined ? false : true,
    colorize: opts.colorize ?? (opts.destination === undefined && process.stdout.isTTY === true && process.stdout.hasColors()),
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
  });
  return pino(options, pretty);
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
