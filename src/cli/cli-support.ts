/** Shared CLI plumbing: config flags from the schema, output, and mapping errors to exit codes. */
import { Command, Option } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { OPTIONS } from '../config/schema.js';
import { ConsoleError } from '../errors.js';
import { createLogger, defaultLogFormat, type Logger } from '../log.js';

/** Options that say where the data is: all an administrative command needs. */
const STORE_OPTIONS = new Set(['dataDir', 'store']);

/** Adds `--config` and the options' flags (all, or only the store's) to a command. */
export function withConfigOptions(cmd: Command, scope: 'all' | 'store' = 'store'): Command {
  cmd.addOption(new Option('--config <file>', 'JSON configuration file').env('ECS_CONSOLE_CONFIG'));
  for (const o of OPTIONS) {
    if (!o.flag || (scope === 'store' && !STORE_OPTIONS.has(o.key))) continue;
    cmd.addOption(new Option(`--${o.flag} <value>`, o.help.replace(/`/g, '')).hideHelp(false));
  }
  return cmd;
}

/** Builds the configuration from a command's flags and the environment. */
export function configFrom(opts: Record<string, unknown>): Config {
  const flags: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    if (!o.flag) continue;
    const camel = o.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (opts[camel] !== undefined) flags[o.key] = opts[camel];
  }
  return loadConfig({ flags, env: process.env, file: (opts['config'] as string | undefined) ?? null });
}

/**
 * The logger of a one-shot command: warnings only, to stderr, so that stdout stays clean for the
 * command's output; pretty when stderr is a terminal unless `logFormat` says otherwise.
 */
export function commandLogger(config: Pick<Config, 'logFormat'>, level: 'warn' | 'info' = 'warn'): Logger {
  return createLogger({ level, destination: process.stderr, format: config.logFormat ?? defaultLogFormat(process.stderr) });
}

/** Exit codes: 2 bad input or configuration (a wrong master key too), 3 not found (a missing store too), 4 conflict, 1 anything else. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof ConsoleError) {
    switch (e.code) {
      case 'VALIDATION':
      case 'CONFIG_INVALID':
      case 'MASTER_KEY_INVALID':
        return 2;
      case 'NOT_FOUND':
      case 'SERVER_NOT_FOUND':
      case 'STORE_MISSING':
        return 3;
      case 'CONFLICT':
        return 4;
      default:
        return 1;
    }
  }
  return 1;
}

/** Prints an error the way an operator wants to read it (no stack unless ECS_CONSOLE_DEBUG=1). */
export function reportError(e: unknown): number {
  const code = exitCodeFor(e);
  if (e instanceof ConsoleError) process.stderr.write(`error: ${e.message}\n`);
  else {
    process.stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
    if (process.env['ECS_CONSOLE_DEBUG'] === '1') process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
  }
  return code;
}

/** Prints rows as an aligned table, or JSON with --json. */
export function printTable(rows: Array<Record<string, string | number | null>>, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(width[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(cols.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(cols.map((c) => String(r[c] ?? ''))));
}

export function printObject(obj: Record<string, unknown>, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
    return;
  }
  const w = Math.max(...Object.keys(obj).map((k) => k.length));
  for (const [k, v] of Object.entries(obj)) process.stdout.write(`${k.padEnd(w)}  ${v ?? ''}\n`);
}

/** Reads all of stdin (for --password-stdin). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Parses a --port value. */
export function parsePort(v: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new ConsoleError('VALIDATION', `port must be 1-65535, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function parseList(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}
