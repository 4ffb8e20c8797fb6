/**
 * Commands create no key, data directory or store as a side effect: only `serve` (and `api`,
 * `proxy`) and `init` do. A command against a missing store says so and exits non-zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/stack.js';

test('a read against a missing data directory: one line, exit 3, nothing created', async () => {
  const root = tempDir();
  const dataDir = join(root, 'nonexistent', 'x');
  const r = await runCli(['project', 'list', '--data-dir', dataDir], {}, undefined, root);
  assert.equal(r.code, 3);
  assert.equal(r.stderr, `error: no ecs-console store at sqlite:${join(dataDir, 'ecs-console.db')}: check --data-dir / --store (ECS_CONSOLE_DATA_DIR, ECS_CONSOLE_STORE), or create one with \`ecs-console init\`\n`);
  assert.equal(r.stdout, '');
  assert.deepEqual(readdirSync(root), []);
});

test('key create against a real store from another directory creates no key and prints no AK/SK', async () => {
  const home = tempDir();
  const env = { ECS_CONSOLE_DATA_DIR: home };
  assert.equal((await runCli(['init'], env)).code, 0);
  const p = JSON.parse((await runCli(['project', 'create', '--name', 'p', '--domain', 'd', '--json'], env)).stdout).id as string;
  assert.equal((await runCli(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], env, 'password-123\n')).code, 0);
  const elsewhere = tempDir();
  const db = join(home, 'ecs-console.db');
  const r = await runCli(['key', 'create', '--store', `sqlite:${db}`, '--domain', 'd', '--user', 'u', '--project', p], {}, undefined, elsewhere);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '', 'no AK/SK printed');
  assert.equal(r.stderr, `error: no master key for the store sqlite:${db}: masterKey is not set (environment ECS_CONSOLE_MASTER_KEY or a config file) and the key file ${join(elsewhere, 'data', 'master.key')} does not exist; this command creates no key\n`);
  assert.deepEqual(readdirSync(elsewhere), [], 'no ./data, no key file');
  assert.equal((await runCli(['key', 'create', '--domain', 'd', '--user', 'u', '--project', p], env)).code, 0, 'from its own data directory it works');
});

test('init creates the data directory, the store and the key (0600); again, it only verifies', async () => {
  const root = tempDir();
  const first = await runCli(['init', '--json'], {}, undefined, root);
  assert.equal(first.code, 0, first.stderr);
  const out = JSON.parse(first.stdout) as { store: string; masterKey: string; keyId: string; keyCheck: string };
  assert.equal(out.store, `sqlite:${join(root, 'data', 'ecs-console.db')}`);
  assert.equal(out.masterKey, `the key file ${join(root, 'data', 'master.key')} (created)`);
  assert.match(out.keyId, /^[0-9a-f]{16}$/);
  assert.match(out.keyCheck, /^recorded \(new store\)/);
  assert.equal(statSync(join(root, 'data', 'master.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(root, 'data')).mode & 0o777, 0o700);
  const again = JSON.parse((await runCli(['init', '--json'], {}, undefined, root)).stdout) as typeof out;
  assert.equal(again.keyId, out.keyId);
  assert.match(again.keyCheck, /^verified/);
  const list = await runCli(['project', 'list'], {}, undefined, root);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(existsSync(join(root, 'data', 'ecs-console.db')), true);
});
