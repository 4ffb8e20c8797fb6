/**
 * CLI parity of the identity lifecycle: key list|show|disable|enable|delete (and create's limit),
 * user list|show|disable|enable|passwd|delete, project list|show|update|delete; --json with the
 * same field names in list and show; clear one-line errors; changes audited as the operator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, type CliResult } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/stack.js';

const env = { ECS_CONSOLE_DATA_DIR: tempDir() };
const cli = (args: string[], stdin?: string): Promise<CliResult> => runCli(args, env, stdin);
const ok = async (args: string[], stdin?: string): Promise<any> => {
  const r = await cli([...args, '--json'], stdin);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};
/** A refusal: its exit code, and one line on stderr naming what is wrong. */
const fails = async (args: string[], code: number, pattern: RegExp): Promise<void> => {
  const r = await cli(args);
  assert.equal(r.code, code, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
};

test('keys, users and projects through the CLI, as the IAM API manages them', async () => {
  assert.equal((await cli(['init'])).code, 0);
  const p = await ok(['project', 'create', '--name', 'p1', '--domain', 'd']);
  await ok(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], 'password-123\n');

  // Keys: Huawei's limit of 2, list and show with the same fields, disable/enable/delete.
  const k1 = await ok(['key', 'create', '--domain', 'd', '--user', 'u', '--project', p.id, '--description', 'ci']);
  await ok(['key', 'create', '--domain', 'd', '--user', 'u', '--project', p.id]);
  await fails(['key', 'create', '--domain', 'd', '--user', 'u', '--project', p.id], 2, /at most 2 permanent access keys/);
  const keys = await ok(['key', 'list', '--domain', 'd']);
  assert.equal(keys.length, 2);
  const shown = await ok(['key', 'show', k1.ak]);
  assert.deepEqual(Object.keys(shown), Object.keys(keys[0]));
  assert.deepEqual(shown, keys.find((k: any) => k.ak === k1.ak));
  assert.equal(shown.description, 'ci');
  assert.equal(JSON.stringify(keys).includes(k1.sk), false, 'never the SK');
  assert.equal((await ok(['key', 'disable', k1.ak])).status, 'inactive');
  assert.equal((await ok(['key', 'show', k1.ak])).status, 'inactive');
  assert.equal((await ok(['key', 'enable', k1.ak])).status, 'active');
  await ok(['key', 'delete', k1.ak]);
  await fails(['key', 'show', k1.ak], 3, /access key .* not found/);
  assert.equal((await ok(['key', 'list', '--domain', 'd', '--user', 'u'])).length, 1);

  // Users: list and show with the same fields, disable/enable, passwd, delete.
  const users = await ok(['user', 'list', '--domain', 'd']);
  const u = await ok(['user', 'show', 'u', '--domain', 'd']);
  assert.deepEqual(users, [u]);
  assert.equal(u.enabled, 'true');
  assert.equal(u.admin, 'false');
  assert.equal((await ok(['user', 'disable', 'u', '--domain', 'd'])).enabled, 'false');
  assert.equal((await ok(['user', 'enable', u.id, '--domain', 'd'])).enabled, 'true');
  await ok(['user', 'passwd', 'u', '--domain', 'd', '--password-stdin'], 'password-456\n');
  await fails(['user', 'passwd', 'u', '--domain', 'd', '--password', 'short'], 2, /password must be 8-128 characters/);
  await fails(['user', 'show', 'nobody', '--domain', 'd'], 3, /user "d\/nobody" not found/);

  // Projects: list and show with the same fields, update, delete (refused while in use).
  const projects = await ok(['project', 'list']);
  const ps = await ok(['project', 'show', p.id]);
  assert.deepEqual(projects, [ps]);
  assert.equal((await ok(['project', 'update', p.id, '--name', 'p1-renamed', '--description', 'main'])).name, 'p1-renamed');
  await fails(['project', 'delete', p.id], 4, /still has servers or access keys/);
  await ok(['user', 'delete', 'u', '--domain', 'd']);
  assert.deepEqual(await ok(['key', 'list', '--domain', 'd']), []);
  await ok(['project', 'delete', p.id]);
  await fails(['project', 'show', p.id], 3, /project .* not found/);

  // Every change is audited as the operator.
  const { openSqliteStores } = await import('../../../src/store/sqlite/sqlite-stores.js');
  const stores = openSqliteStores(`${env.ECS_CONSOLE_DATA_DIR}/ecs-console.db`, { create: false });
  try {
    const kinds = new Set((await stores.audit.listAudit({})).filter((e) => /^cli:/.test(e.actorCredential ?? '')).map((e) => e.kind));
    for (const k of ['ak-created', 'ak-deactivated', 'ak-activated', 'ak-deleted', 'user-disabled', 'user-enabled', 'user-password-changed', 'user-deleted', 'project-updated', 'project-deleted']) {
      assert.ok(kinds.has(k as never), `${k} audited (${[...kinds].join(' ')})`);
    }
  } finally {
    await stores.close();
  }
});
