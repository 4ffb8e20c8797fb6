/**
 * Logging: pino, JSON lines, one child logger per connection.
 * NOTE: never log a token, a secret key, a password, an Authorization or X-Auth-Token value, or a
 * URL's query string. Correlate console tokens with `tokenRef()` (first 8 hex of the sha256).
 */
import { createHash } from 'node:crypto';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

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
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      name: opts.name ?? 'ecs-console',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.err },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
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
