import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hashPassword, verifyPassword } from '../../../src/identity/password-hash.js';
import { createMasterKeyFile, readMasterKeys, writeKeyFile } from '../../../src/secrets/master-key.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { ConfigError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/stack.js';

const keyConfig = (dataDir: string, masterKey: string | null = null) => ({ dataDir, masterKey, sources: { masterKey: 'environment ECS_CONSOLE_MASTER_KEY' } });

test('the created master key file is 0600, 32 bytes, and what is read back; never overwritten', () => {
  const dir = join(tempDir(), 'data');
  const a = createMasterKeyFile(dir);
  assert.equal(a.length, 32);
  assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
  assert.deepEqual(readMasterKeys(keyConfig(dir)), [a]);
  assert.deepEqual(createMasterKeyFile(dir), a);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
});

test('reading the master key creates nothing: no key file, no directory', () => {
  const dir = join(tempDir(), 'missing', 'data');
  assert.equal(readMasterKeys(keyConfig(dir)), null);
  assert.equal(existsSync(dirname(dir)), false);
});

test('a configured master key wins; a malformed one is refused by name and source', () => {
  const k = Buffer.alloc(32, 7).toString('base64');
  assert.deepEqual(readMasterKeys(keyConfig(tempDir(), k)), [Buffer.alloc(32, 7)]);
  assert.throws(() => readMasterKeys(keyConfig(tempDir(), 'c2hvcnQ=')), (e: unknown) => e instanceof ConfigError && /masterKey from environment ECS_CONSOLE_MASTER_KEY/.test((e as Error).message));
  const dir = tempDir();
  writeFileSync(join(dir, 'master.key'), 'garbage');
  assert.throws(() => readMasterKeys(keyConfig(dir)), (e: unknown) => e instanceof ConfigError && e.message.includes(join(dir, 'master.key')));
});

test('AES-256-GCM: round trip, fresh IV each time, bound to its row, tamper-evident, wrong key loud', () => {
  const box = new SecretBox(Buffer.alloc(32, 1));
  const a = box.seal('secret-key-value', 'sk:AK1');
  const b = box.seal('secret-key-value', 'sk:AK1');
  assert.notEqual(a, b);
  assert.ok(!a.includes('secret-key-value'));
  assert.equal(box.open(a, 'sk:AK1'), 'secret-key-value');
  assert.throws(() => box.open(a, 'sk:AK2'), /wrong master key/);
  const parts = a.split(':');
  parts[3] = Buffer.from('x'.repeat(16)).toString('base64');
  assert.throws(() => box.open(parts.join(':'), 'sk:AK1'));
  assert.throws(() => new SecretBox(Buffer.alloc(32, 2)).open(a, 'sk:AK1'), /wrong master key/);
});

test('a key ring: in the key file one key a line, in masterKey comma-separated; the first seals, every key opens', () => {
  const k1 = Buffer.alloc(32, 1);
  const k2 = Buffer.alloc(32, 2);
  const dir = tempDir();
  writeKeyFile(join(dir, 'master.key'), [k2, k1]);
  assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
  assert.deepEqual(readMasterKeys(keyConfig(dir)), [k2, k1]);
  assert.deepEqual(readMasterKeys(keyConfig(tempDir(), ` ${k2.toString('base64')} , ${k1.toString('base64')} `)), [k2, k1]);
  assert.throws(() => readMasterKeys(keyConfig(tempDir(), `${k2.toString('base64')},c2hvcnQ=`)), (e: unknown) => e instanceof ConfigError && /key 2 of masterKey from environment/.test((e as Error).message));
  assert.throws(() => readMasterKeys(keyConfig(tempDir(), ' , ')), (e: unknown) => e instanceof ConfigError && /holds no key/.test((e as Error).message));

  const old = new SecretBox(k1);
  const ring = new SecretBox([k2, k1]);
  assert.equal(ring.keyId, new SecretBox(k2).keyId);
  assert.deepEqual(ring.keyIds, [new SecretBox(k2).keyId, old.keyId]);
  const sealedOld = old.seal('v', 'vnc:s1');
  const sealedNew = ring.seal('v', 'vnc:s1');
  assert.equal(ring.open(sealedOld, 'vnc:s1'), 'v');
  assert.deepEqual(ring.openWithId(sealedOld, 'vnc:s1'), { plaintext: 'v', keyId: old.keyId });
  assert.deepEqual(ring.openWithId(sealedNew, 'vnc:s1'), { plaintext: 'v', keyId: ring.keyId });
  assert.throws(() => old.open(sealedNew, 'vnc:s1'), /wrong master key/);
  // A reload replaces the ring in place.
  old.replaceKeys([k2]);
  assert.equal(old.open(sealedNew, 'vnc:s1'), 'v');
  assert.equal(old.openWithId(sealedOld, 'vnc:s1'), null);
});

test('user passwords: scrypt with a salt; verification', async () => {
  const h1 = await hashPassword('correct horse');
  const h2 = await hashPassword('correct horse');
  assert.match(h1, /^scrypt\$16384\$8\$1\$/);
  assert.notEqual(h1, h2);
  assert.ok(!h1.includes('correct horse'));
  assert.equal(await verifyPassword('correct horse', h1), true);
  assert.equal(await verifyPassword('wrong', h1), false);
  assert.equal(await verifyPassword('x', 'not-a-hash'), false);
});
