/**
 * `backup` and `restore` refuse what they must, each with one clear line: a PostgreSQL store
 * (pg_dump), an existing backup file, a restore without the backup's master key or with another
 * one, a restore over a store in use unless told, a file that is not a backup.
 * (test/system/backup-restore.test.ts backs up a serving store and restores it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliResult } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/stack.js';

const must = (r: CliResult): CliResult => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};
const projects = async (dataDir: string): Promise<string[]> =>
  (JSON.parse(must(await runCli(['project', 'list', '--json', '--data-dir', dataDir])).stdout) as Array<{ name: string }>).map((p) => p.name).sort();

test('backup and restore: what they refuse, and a restore that replaces a store when told to', async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  must(await runCli(['init', '--data-dir', data]));
  must(await runCli(['project', 'create', '--name', 'before', '--domain', 'acme', '--data-dir', data]));
  const file = join(dir, 'b.db');
  must(await runCli(['backup', '--to', file, '--data-dir', data]));
  assert.equal(statSync(file).mode & 0o777, 0o600, 'the backup holds sealed secrets and token hashes: 0600');

  const again = await runCli(['backup', '--to', file, '--data-dir', data]);
  assert.equal(again.code, 4);
  assert.match(again.stderr, /^error: .*b\.db exists; choose a new file/);

  const pg = await runCli(['backup', '--to', join(dir, 'pg.db'), '--store', 'postgres://u:secret@127.0.0.1:1/db']);
  assert.equal(pg.code, 2);
  assert.match(pg.stderr, /^error: backup works on a SQLite store; .* is PostgreSQL: use pg_dump and pg_restore/);
  assert.doesNotMatch(pg.stderr, /secret/);

  // Without the key, or with another key: refused before anything is written.
  const fresh = join(dir, 'fresh');
  const noKey = await runCli(['restore', '--from', file, '--data-dir', fresh]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /^error: no master key for the restored store: .* put back the key the backup was taken with \(key id [0-9a-f]{16}\)/);
  const other = join(dir, 'other');
  must(await runCli(['init', '--data-dir', other]));
  const wrongKey = await runCli(['restore', '--from', file, '--data-dir', other, '--replace']);
  assert.equal(wrongKey.code, 2);
  assert.match(wrongKey.stderr, /does not open the backup .*b\.db, whose secrets are sealed with key id [0-9a-f]{16}/);

  // Over a store in use: only with --replace, and then it is the backup's content.
  must(await runCli(['project', 'create', '--name', 'after', '--domain', 'acme', '--data-dir', data]));
  const over = await runCli(['restore', '--from', file, '--data-dir', data]);
  assert.equal(over.code, 4);
  assert.match(over.stderr, /holds 2 projects; a restore replaces all of it: stop the service, then run restore again with --replace/);
  assert.deepEqual(await projects(data), ['after', 'before']);
  must(await runCli(['restore', '--from', file, '--data-dir', data, '--replace']));
  assert.deepEqual(await projects(data), ['before']);

  // Into an empty directory holding only the key.
  mkdirSync(fresh, { recursive: true, mode: 0o700 });
  copyFileSync(join(data, 'master.key'), join(fresh, 'master.key'));
  must(await runCli(['restore', '--from', file, '--data-dir', fresh]));
  assert.deepEqual(await projects(fresh), ['before']);

  const junk = join(dir, 'junk.db');
  writeFileSync(junk, 'not a database at all, just text that is long enough to be looked at');
  const notDb = await runCli(['restore', '--from', junk, '--data-dir', fresh, '--replace']);
  assert.equal(notDb.code, 2);
  assert.match(notDb.stderr, /^error: .*junk\.db (cannot be|failed|is a SQLite)/);
  const missing = await runCli(['restore', '--from', join(dir, 'nope.db'), '--data-dir', fresh]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: no backup file at /);
});
