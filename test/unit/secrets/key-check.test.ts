/**
 * The store's master key check: a process whose key is not the store's refuses to start, with a
 * message naming the key and the store; a missing key file never becomes a new key for a store
 * that already holds secrets; stores from before the check get one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../../src/app.js';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { MasterKeyError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { openSqliteDatabase } from '../../../src/store/sqlite/sqlite-database.js';
import { SQLITE_MIGRATIONS } from '../../../src/store/sqlite/migrations.js';
import { runCli, startOrExit } from '../../helpers/cli.js';
import { seed, startStack, tempDir } from '../../helpers/stack.js';

const newKey = (): string => randomBytes(32).toString('base64');
const idOf = (b64: string): string => new SecretBox(Buffer.from(b64, 'base64')).keyId;

function configFor(dataDir: string, masterKey?: string, store?: string): Config {
  return loadConfig({ flags: { dataDir, ...(store ? { store } : {}) }, env: masterKey ? { ECS_CONSOLE_MASTER_KEY: masterKey } : {} });
}

async function open(config: Config, mode: 'create' | 'existing' = 'existing') {
  return createServices(config, { logger: silentLogger() }, mode);
}

/** A database as the previous release left it: migrations 1 and 2 only, no key check. */
function legacyStore(dir: string, sealWith?: string): string {
  const path = join(dir, 'legacy.db');
  const db = openSqliteDatabase(path, { migrations: SQLITE_MIGRATIONS.filter((m) => m.version <= 2) });
  if (sealWith) {
    const box = new SecretBox(Buffer.from(sealWith, 'base64'));
    const ak = 'AKLEGACY0000000000001';
    db.prepare('INSERT INTO domains VALUES (?, ?, 1)').run('d'.repeat(32), 'dom');
    db.prepare('INSERT INTO projects VALUES (?, ?, ?, 1)').run('p'.repeat(32), 'proj', 'd'.repeat(32));
    db.prepare("INSERT INTO users VALUES (?, ?, 'u', 'scrypt$x', '[\"*\"]', 1)").run('u'.repeat(32), 'd'.repeat(32));
    db.prepare("INSERT INTO access_keys (ak, user_id, project_id, sk_sealed, actions, created_at) VALUES (?, ?, ?, ?, '[\"*\"]', 1)")
      .run(ak, 'u'.repeat(32), 'p'.repeat(32), box.seal('legacy-secret-key', `sk:${ak}`));
  }
  db.close();
  return `sqlite:${path}`;
}

test('a new store records the key that created it; another key is refused, naming both keys and the store', async () => {
  const dir = tempDir();
  const first = await open(configFor(dir), 'create');
  assert.deepEqual({ kind: first.masterKey.check.kind, created: first.masterKey.created }, { kind: 'recorded', created: true });
  const keyId = first.masterKey.keyId;
  await first.close();
  const again = await open(configFor(dir));
  assert.equal(again.masterKey.check.kind, 'verified');
  await again.close();
  const other = newKey();
  await assert.rejects(open(configFor(dir, other)), (e: unknown) => e instanceof MasterKeyError
    && e.message.includes(`masterKey from environment ECS_CONSOLE_MASTER_KEY (key id ${idOf(other)})`)
    && e.message.includes(`sqlite:${join(dir, 'ecs-console.db')}`)
    && e.message.includes(`initialised with key id ${keyId}`));
});

test('a store from before key checks: the first key that opens a stored secret is recorded; a key that opens none is refused', async () => {
  const dir = tempDir();
  const right = newKey();
  const wrong = newKey();
  const store = legacyStore(dir, right);
  await assert.rejects(open(configFor(dir, wrong, store)), (e: unknown) => e instanceof MasterKeyError && /opens none of the 1 secret\(s\) checked/.test(e.message));
  const s = await open(configFor(dir, right, store));
  assert.deepEqual(s.masterKey.check, { kind: 'recorded', keyId: idOf(right), from: 'stored-secret', secretsProbed: 1, secretsUnreadable: 0 });
  const [secret] = await s.stores.keyChecks.listSealedSecrets(10);
  assert.equal(s.box.open(secret!.sealed, secret!.aad), 'legacy-secret-key');
  await s.close();
  await assert.rejects(open(configFor(dir, wrong, store)), (e: unknown) => e instanceof MasterKeyError && e.message.includes(`initialised with key id ${idOf(right)}`));
});

test('a store from before key checks holding no secret gets the current key\'s check', async () => {
  const dir = tempDir();
  const store = legacyStore(dir);
  const key = newKey();
  const s = await open(configFor(dir, key, store));
  assert.deepEqual(s.masterKey.check, { kind: 'recorded', keyId: idOf(key), from: 'empty-store', secretsProbed: 0, secretsUnreadable: 0 });
  await s.close();
  await assert.rejects(open(configFor(dir, newKey(), store)), MasterKeyError);
});

test('the associated data the store lists opens every secret the services sealed', async () => {
  const stack = await startStack();
  try {
    await seed(stack.app, { host: '127.0.0.1', port: 5900, auth: 'vnc-password', password: 'vncpw' });
    const listed = await stack.app.services.stores.keyChecks.listSealedSecrets(1000);
    assert.equal(listed.filter((x) => x.aad.startsWith('sk:')).length, 3);
    assert.equal(listed.filter((x) => x.aad.startsWith('vnc:')).length, 3);
    for (const x of listed) stack.app.services.box.open(x.sealed, x.aad);
  } finally {
    await stack.stop();
  }
});

test('a real restart without the master key file, or with another key, exits non-zero and says which key and where', async () => {
  const dir = tempDir();
  const env = { ECS_CONSOLE_DATA_DIR: dir, ECS_CONSOLE_LOG_LEVEL: 'warn' };
  const serve = ['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'];
  const first = await startOrExit(serve, env);
  assert.equal(first.started, true, first.stderr);
  const p = JSON.parse((await runCli(['project', 'create', '--name', 'p', '--domain', 'd', '--json'], env)).stdout).id as string;
  assert.equal((await runCli(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], env, 'password-123\n')).code, 0);
  assert.equal((await runCli(['key', 'create', '--domain', 'd', '--user', 'u', '--project', p], env)).code, 0);
  const keyFile = join(dir, 'master.key');
  const original = readFileSync(keyFile, 'utf8').trim();

  renameSync(keyFile, `${dir}.moved-key`);
  const missing = await startOrExit(serve, env);
  assert.equal(missing.started, false, 'must not start without its key');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: no master key: .*the key file \S+master\.key does not exist, but the store sqlite:\S+ holds key id [0-9a-f]{16}: restore the key file/);
  assert.ok(missing.stderr.includes(keyFile) && missing.stderr.includes(idOf(original)), missing.stderr);
  assert.equal(missing.stderr.trim().split('\n').length, 1, 'one line');
  assert.equal(existsSync(keyFile), false, 'no new key file was written');

  const other = newKey();
  const configured = await startOrExit(serve, { ...env, ECS_CONSOLE_MASTER_KEY: other });
  assert.equal(configured.started, false);
  assert.equal(configured.code, 2);
  assert.ok(configured.stderr.includes(`masterKey from environment ECS_CONSOLE_MASTER_KEY (key id ${idOf(other)}) is not the master key of the store sqlite:${join(dir, 'ecs-console.db')}, which was initialised with key id ${idOf(original)}`), configured.stderr);

  writeFileSync(keyFile, other + '\n', { mode: 0o600 });
  const wrongFile = await startOrExit(serve, env);
  assert.equal(wrongFile.started, false);
  assert.equal(wrongFile.code, 2);
  assert.ok(wrongFile.stderr.includes(`the key file ${keyFile} (key id ${idOf(other)}) is not the master key`), wrongFile.stderr);

  writeFileSync(keyFile, original + '\n', { mode: 0o600 });
  const restored = await startOrExit(serve, env);
  assert.equal(restored.started, true, restored.stderr);
});
