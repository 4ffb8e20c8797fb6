/**
 * The master key ring and its rotation over a real SQLite store: the sealing key must be a key of
 * the store, a rotation re-seals everything and retires the old keys, refuses a ring holding none
 * of the store's keys and leaves everything as it is when a secret opens with no key of the
 * ring; a running app takes a new ring on reload only when its first key is the store's.
 * (test/system/key-rotation.test.ts kills a rotation halfway, on SQLite and PostgreSQL.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/config.js';
import { MasterKeyError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { keyCheckOf } from '../../../src/secrets/key-check.js';
import { rotateMasterKey, type RotationProgress } from '../../../src/secrets/key-rotation.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { runCli, type CliResult } from '../../helpers/cli.js';
import { startStack, tempDir } from '../../helpers/stack.js';

const key = (): Buffer => randomBytes(32);
const b64 = (k: Buffer): string => k.toString('base64');

async function storeWith(dataDir: string, ring: Buffer[], secrets: number) {
  const s = await createServices(loadConfig({ flags: { dataDir }, env: { ECS_CONSOLE_MASTER_KEY: ring.map(b64).join(',') } }), { logger: silentLogger() }, 'create');
  const p = await s.identity.createProject({ name: 'p', domain: 'd' });
  const u = await s.identity.createUser({ domain: 'd', name: 'u', password: 'password-123' });
  const keys: Array<{ ak: string; sk: string }> = [];
  for (let i = 0; i < secrets; i++) keys.push(await s.identity.createAccessKey({ userId: u.id, projectId: p.id }));
  return { s, keys };
}

test('rotation: the new key\'s check is added, every secret re-sealed (in batches), the old key retired; a second run finds nothing to do', async () => {
  const oldKey = key();
  const newKey = key();
  const { s, keys } = await storeWith(tempDir(), [oldKey], 25);
  try {
    const ring = new SecretBox([newKey, oldKey]);
    const progress: RotationProgress[] = [];
    const r = await rotateMasterKey(s.stores.keyChecks, ring, 1000, { batch: 10, onBatch: (p) => progress.push(p) });
    assert.deepEqual({ keyId: r.keyId, checkAdded: r.checkAdded, resealed: r.resealed, passes: r.passes, retired: r.retired, secrets: r.secrets },
      { keyId: ring.keyId, checkAdded: true, resealed: 25, passes: 2, retired: [new SecretBox(oldKey).keyId], secrets: 25 });
    assert.deepEqual(progress.map((p) => p.resealed), [10, 20, 25]);
    assert.deepEqual((await s.stores.keyChecks.listKeyChecks()).map((c) => c.keyId), [ring.keyId]);
    const newOnly = new SecretBox(newKey);
    for (const k of keys) assert.equal(newOnly.open((await s.stores.identity.getAccessKey(k.ak))!.skSealed, `sk:${k.ak}`), k.sk);
    const again = await rotateMasterKey(s.stores.keyChecks, ring, 2000, { batch: 10 });
    assert.deepEqual({ resealed: again.resealed, passes: again.passes, retired: again.retired, checkAdded: again.checkAdded }, { resealed: 0, passes: 1, retired: [], checkAdded: false });
  } finally {
    await s.close();
  }
});

test('rotation refuses a ring without a key of the store, and retires nothing while a secret opens with no key of the ring', async () => {
  const oldKey = key();
  const { s, keys } = await storeWith(tempDir(), [oldKey], 3);
  try {
    await assert.rejects(rotateMasterKey(s.stores.keyChecks, new SecretBox([key(), key()]), 1, { batch: 10 }),
      (e: unknown) => e instanceof MasterKeyError && /holds none of the store's keys/.test((e as Error).message));
    // A secret sealed with a key nobody holds (written behind the services' back).
    const stray = new SecretBox(key());
    const k = (await s.stores.identity.getAccessKey(keys[0]!.ak))!;
    await s.stores.keyChecks.replaceSealedSecrets([{ aad: `sk:${k.ak}`, from: k.skSealed, to: stray.seal('x', `sk:${k.ak}`) }]);
    const newKey = key();
    await assert.rejects(rotateMasterKey(s.stores.keyChecks, new SecretBox([newKey, oldKey]), 1, { batch: 10 }),
      (e: unknown) => e instanceof MasterKeyError && /1 stored secret\(s\) open with no key of the ring .* no key was retired/.test((e as Error).message));
    assert.equal((await s.stores.keyChecks.listKeyChecks()).length, 2, 'the old key was retired');
  } finally {
    await s.close();
  }
});

test('a process whose first key (the sealing key) is not a key of the store is refused, saying so; with it recorded, the ring starts', async () => {
  const dir = tempDir();
  const oldKey = key();
  const { s } = await storeWith(dir, [oldKey], 1);
  await s.close();
  const newKey = key();
  const config = loadConfig({ flags: { dataDir: dir }, env: { ECS_CONSOLE_MASTER_KEY: `${b64(newKey)},${b64(oldKey)}` } });
  await assert.rejects(createServices(config, { logger: silentLogger() }),
    (e: unknown) => e instanceof MasterKeyError && new RegExp(`starts with key id ${new SecretBox(newKey).keyId}, which seals new secrets but is not a key of the store .*master-key add`).test((e as Error).message));
  const again = await createServices(loadConfig({ flags: { dataDir: dir }, env: { ECS_CONSOLE_MASTER_KEY: b64(oldKey) } }), { logger: silentLogger() });
  await again.stores.keyChecks.addKeyCheck(keyCheckOf(new SecretBox(newKey), 1));
  await again.close();
  const ring = await createServices(config, { logger: silentLogger() });
  assert.deepEqual(ring.box.keyIds, [new SecretBox(newKey).keyId, new SecretBox(oldKey).keyId]);
  await ring.close();
});

test('reload: a new ring whose first key is the store\'s is taken at once; one that is not, or a broken key file, keeps the current keys', async () => {
  const dataDir = tempDir();
  const stack = await startStack({ dataDir });
  try {
    const file = join(dataDir, 'master.key');
    const oldKey = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    const newKey = key();
    const oldId = new SecretBox(oldKey).keyId;
    const newId = new SecretBox(newKey).keyId;
    const { box } = stack.app.services;

    writeFileSync(file, `${b64(newKey)}\n${b64(oldKey)}\n`);
    assert.equal((await stack.app.reload(stack.config)).masterKey, 'kept-previous');
    assert.deepEqual(box.keyIds, [oldId]);
    assert.match(stack.logs.text, /"level":"error".*"msg":"master key ring not reloaded; the current keys stay in use"/);

    await stack.app.services.stores.keyChecks.addKeyCheck(keyCheckOf(new SecretBox(newKey), 1));
    assert.equal((await stack.app.reload(stack.config)).masterKey, 'reloaded');
    assert.deepEqual(box.keyIds, [newId, oldId]);
    // Sealed from now on with the new key.
    const srv = await stack.app.services.inventory.addServer({ projectId: (await stack.app.services.identity.createProject({ name: 'p', domain: 'd' })).id, name: 'x', console: { host: '127.0.0.1', port: 5900, auth: 'vnc-password', password: 'pw' } });
    assert.equal(new SecretBox(newKey).open(srv.console.passwordSealed!, `vnc:${srv.id}`), 'pw');
    assert.equal((await stack.app.reload(stack.config)).masterKey, 'unchanged');

    writeFileSync(file, 'garbage\n');
    assert.equal((await stack.app.reload(stack.config)).masterKey, 'kept-previous');
    assert.deepEqual(box.keyIds, [newId, oldId]);
  } finally {
    await stack.stop();
  }
});

test('master-key add refuses a second addition while a rotation is under way, and a new key that is not 32 bytes', async () => {
  const dir = tempDir();
  const env = { ECS_CONSOLE_DATA_DIR: dir };
  const must = (r: CliResult): CliResult => {
    assert.equal(r.code, 0, r.stderr);
    return r;
  };
  must(await runCli(['init'], env));
  const bad = await runCli(['master-key', 'add', '--key-stdin'], env, 'c2hvcnQ=\n');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: the new key must be the base64 encoding of exactly 32 bytes/);
  must(await runCli(['master-key', 'add'], env));
  const twice = await runCli(['master-key', 'add'], env);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /already holds 2 keys \(a rotation under way\): finish it with `ecs-console master-key rotate` first/);
  const badBatch = await runCli(['master-key', 'rotate', '--batch', '0'], env);
  assert.equal(badBatch.code, 2);
  assert.match(badBatch.stderr, /--batch must be 1-10000/);
});

test('rotation re-seals recordings\' data keys: a recording made before it plays after it, and after the old key is dropped', async () => {
  const dataDir = tempDir();
  const oldKey = key();
  const newKey = key();
  const { s } = await storeWith(dataDir, [oldKey], 1);
  let recordingId: string;
  try {
    const p = await s.identity.createProject({ name: 'recorded', domain: 'd' });
    await s.recordings.setPolicy({ scope: 'project', scopeId: p.id, enabled: true });
    const tap = (await s.recordings.tapFor({ id: 'session-1', projectId: p.id, serverId: 'server-1' }))!;
    tap.started(Buffer.from('server init'));
    tap.server(Buffer.from('the screen before the rotation'));
    tap.ended('closed-by-user');
    await s.recordings.stop();
    recordingId = tap.recordingId;
    for (let i = 0; i < 100 && (await s.recordings.get(recordingId))?.endedAt == null; i++) await new Promise((r) => setTimeout(r, 20));
    const r = await rotateMasterKey(s.stores.keyChecks, new SecretBox([newKey, oldKey]), 1000, { batch: 10 });
    // The access key and the recording's data key.
    assert.equal(r.resealed, 2);
    const rec = (await s.recordings.get(recordingId))!;
    assert.equal(new SecretBox(oldKey).openWithId(rec.sealedKey, `recording:${rec.id}`), null, 'no longer sealed with the old key');
  } finally {
    await s.close();
  }
  // The old key dropped: the ring holds the new key only.
  const after = await createServices(loadConfig({ flags: { dataDir }, env: { ECS_CONSOLE_MASTER_KEY: b64(newKey) } }), { logger: silentLogger() });
  try {
    const rec = (await after.recordings.get(recordingId))!;
    const read = await after.recordings.read(rec);
    assert.equal(read.integrity, 'verified');
    assert.match(read.records.toString('latin1'), /the screen before the rotation/);
  } finally {
    await after.close();
  }
});
