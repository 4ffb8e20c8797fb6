/**
 * `backup` and `restore` of the SQLite store (docs/deploy.md, "Backup and restore"). A backup is
 * taken while the service runs; a restore checks, before it writes anything, that the configured
 * master key opens the backup. PostgreSQL stores are backed up with pg_dump.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import type { Config } from '../config/config.js';
import { MasterKeyError, ValidationError } from '../errors.js';
import { keyOpens } from '../secrets/key-check.js';
import { masterKeySource, readMasterKeys } from '../secrets/master-key.js';
import { SecretBox } from '../secrets/secret-box.js';
import { describePostgresUrl } from '../store/postgres/postgres-database.js';
import { backupSqlite, openBackup, type TableCounts } from '../store/sqlite/sqlite-backup.js';
import { configFrom, printObject, withConfigOptions } from './cli-support.js';

/** The SQLite file of the configured store; PostgreSQL (or :memory:) gets a clear refusal. */
function sqliteFile(config: Config, command: string): string {
  if (!config.store.startsWith('sqlite:')) {
    throw new ValidationError(`${command} works on a SQLite store; ${describePostgresUrl(config.store)} is PostgreSQL: use pg_dump and pg_restore (docs/deploy.md, "Backup and restore")`);
  }
  const path = config.store.slice('sqlite:'.length);
  if (path === ':memory:') throw new ValidationError(`${command}: the store sqlite::memory: lives in one process only`);
  return path;
}

const rows = (t: TableCounts): string => Object.entries(t).filter(([name]) => name !== 'schema_migrations').map(([name, n]) => `${name}=${n}`).join(' ');

export function backupCommand(): Command {
  return withConfigOptions(new Command('backup').description('write a consistent copy of the SQLite store to a file, while the service runs (PostgreSQL: pg_dump)'))
    .requiredOption('--to <file>', 'the backup file to write (must not exist; written 0600)')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const s = await backupSqlite(sqliteFile(config, 'backup'), resolve(o.to as string), { busyTimeoutMs: config.sqliteBusyTimeoutMs });
      const opened = openBackup(s.path);
      let keyIds: string[];
      try {
        keyIds = (await opened.keyChecks.listKeyChecks()).map((c) => c.keyId);
      } finally {
        opened.close();
      }
      printObject(o.json ? { ...s, keyIds } : { backup: s.path, bytes: s.bytes, schemaVersion: s.schemaVersion, keyIds: keyIds.join(', '), rows: rows(s.tables) }, !!o.json);
      process.stderr.write(`The backup holds secrets sealed with the master key (key id ${keyIds.join(', ') || 'not recorded'}), not the key: keep ${masterKeySource(config).description} safe apart from it.\n`);
    });
}

export function restoreCommand(): Command {
  return withConfigOptions(new Command('restore').description('restore the SQLite store from a backup file (stop the service first)'))
    .requiredOption('--from <file>', 'the backup file')
    .option('--replace', 'replace a store that holds projects, users, keys or servers')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const target = sqliteFile(config, 'restore');
      const backup = openBackup(resolve(o.from as string));
      try {
        // The key first: a restored store that no key opens would only refuse to start.
        const ids = (await backup.keyChecks.listKeyChecks()).map((c) => c.keyId).join(', ') || 'not recorded';
        const source = masterKeySource(config);
        const keys = readMasterKeys(config);
        if (!keys) {
          throw new MasterKeyError(`no master key for the restored store: ${source.description} does not exist and masterKey is not set; put back the key the backup was taken with (key id ${ids}), then restore`);
        }
        const box = new SecretBox(keys);
        if (!(await keyOpens(backup.keyChecks, box))) {
          throw new MasterKeyError(`${source.description} (key id ${box.keyId}) does not open the backup ${backup.summary.path}, whose secrets are sealed with key id ${ids}: put that key back, then restore`);
        }
        const tables = await backup.restoreInto(target, { replace: !!o.replace, busyTimeoutMs: config.sqliteBusyTimeoutMs });
        printObject(o.json ? { restored: `sqlite:${target}`, from: backup.summary.path, tables } : { restored: `sqlite:${target}`, from: backup.summary.path, keyId: box.keyId, rows: rows(tables) }, !!o.json);
      } finally {
        backup.close();
      }
    });
}
