/**
 * The master key: from configuration (base64 of 32 bytes) or a key file in the data directory,
 * generated with mode 0600 on first start.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export const MASTER_KEY_FILE = 'master.key';

function decode(b64: string, option: string): Buffer {
  const key = Buffer.from(b64.trim(), 'base64');
  if (key.length !== 32 || key.toString('base64') !== b64.trim()) throw new ConfigError(option, 'must be the base64 encoding of exactly 32 bytes');
  return key;
}

/** Returns the master key, creating `<dataDir>/master.key` (0600) when neither exists. */
export function loadMasterKey(configured: string | null, dataDir: string): Buffer {
  if (configured) return decode(configured, 'masterKey');
  ensureDataDir(dataDir);
  const path = join(dataDir, MASTER_KEY_FILE);
  try {
    return decode(readFileSync(path, 'utf8'), `masterKey (file ${path})`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = randomBytes(32);
  // 'wx': never overwrite a key another process wrote meanwhile.
  try {
    writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return decode(readFileSync(path, 'utf8'), `masterKey (file ${path})`);
    throw e;
  }
  return key;
}

/** Creates the data directory (0700) if missing. */
export function ensureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const st = statSync(dataDir);
  if (!st.isDirectory()) throw new ConfigError('dataDir', `${dataDir} is not a directory`);
}

/** Tightens a file to 0600 (the SQLite database and its WAL files). */
export function restrictFile(path: string): void {
  try {
    chmodSync(path, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
