/**
 * `store copy`: moves a single node's SQLite store to PostgreSQL (docs/deploy.md, "From one node
 * to a fleet"). Stop the node first: what it writes after the copy's snapshot is not copied.
 */
import { Command, Option } from 'commander';
import { loadConfig } from '../config/config.js';
import { ValidationError } from '../errors.js';
import { copySqliteToPostgres } from '../store/store-copy.js';
import { commandLogger, configFrom, printObject, withConfigOptions } from './cli-support.js';

/** A store URL as the configuration would resolve it (relative SQLite paths against the working directory). */
function storeUrl(raw: string): string {
  return loadConfig({ flags: { store: raw }, env: {} }).store;
}

export function storeCommand(): Command {
  const cmd = new Command('store').description('operations on the store itself');
  withConfigOptions(cmd.command('copy').description('copy a SQLite store into an empty PostgreSQL database, then check every table\'s row count'))
    .option('--from <store>', 'the SQLite store to copy, sqlite:<path> (default: the configured store)')
    .requiredOption('--to <url>', 'the PostgreSQL database, postgres://user@host:port/db (its schema is created)')
    .option('--replace', 'empty a target that already holds rows (all of them) before copying')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const from = o.from ? storeUrl(o.from as string) : config.store;
      const to = storeUrl(o.to as string);
      if (!from.startsWith('sqlite:') || from === 'sqlite::memory:') throw new ValidationError(`--from must be a SQLite store file, sqlite:<path>; got ${from.startsWith('sqlite:') ? from : 'a PostgreSQL URL'}`);
      if (!to.startsWith('postgres')) throw new ValidationError('--to must be a PostgreSQL URL, postgres://user@host:port/db');
      const r = await copySqliteToPostgres(from.slice('sqlite:'.length), to, { replace: !!o.replace, busyTimeoutMs: config.sqliteBusyTimeoutMs, log: commandLogger(config) });
      const total = Object.values(r.tables).reduce((a, n) => a + n, 0);
      printObject(o.json ? { ...r, rows: total } : {
        from: r.from, to: r.to, rows: `${total} in ${Object.keys(r.tables).length} tables, counts equal in both`,
        tables: Object.entries(r.tables).map(([t, n]) => `${t}=${n}`).join(' '),
      }, !!o.json);
    });
  return cmd;
}
