/**
 * The master key: from configuration (base64 of 32 bytes) or the key file `<dataDir>/master.key`.
 * Reading never creates anything; only the commands that create a store (`serve`, `api`, `proxy`,
 * `init`) create the key file, and only for a store that holds no key check and no secret yet
 * (see key-check.ts).
 *
 * Either source may hold a key ring during a rotation: several keys, one a line in the key file
 * or comma-separated in `masterKey`. The first key seals; every key opens.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';

export const MASTER_KEY_FILE = 'master.key';

/** Where the key of a configuration comes from, said the way messages say it. */
export interface MasterKeySource {
  /** The configured value (environment or config file), or the key file. */
  readonly kind: 'configured' | 'file';
  /** E.g. `masterKey from environment ECS_CONSOLE_MASTER_KEY` or `the key file /srv/data/master.key`. */
  readonly description: string;
  /** The key file's path (kind `file`). */
  readonly path: string | null;
}

export function masterKeySource(config: Pick<Config, 'masterKey' | 'dataDir' | 'sources'>): MasterKeySource {
  if (config.masterKey) return { kind: 'configured', description: `masterKey from ${config.sources['masterKey'] ?? 'the configuration'}`, path: null };
  const path = join(config.dataDir, MASTER_KEY_FILE);
  return { kind: 'file', description: `the key file ${path}`, path };
}

function decode(b64: string, what: string): Buffer {
  const key = Buffer.from(b64.trim(), 'base64');
  if (key.length !== 32 || key.toString('base64') !== b64.trim()) throw new ConfigError('masterKey', `${what} must be the base64 encoding of exactly 32 bytes`);
  return key;
}

/** Keys of a ring written as text: separated by commas or line ends, blank parts ignored. */
function decodeRing(text: string, what: string): Buffer[] {
  const parts = text.split(/[,\n]/).map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new ConfigError('masterKey', `${what} holds no key`);
  return parts.map((p, i) => decode(p, parts.length > 1 ? `key ${i + 1} of ${what}` : what));
}

/**
 * The master key ring (the sealing key first), or null when none is configured and the key file
 * does not exist. Creates nothing.
 */
export function readMasterKeys(config: Pick<Config, 'masterKey' | 'dataDir' | 'sources'>): Buffer[] | null {
  const source = masterKeySource(config);
  if (config.masterKey) return decodeRing(config.masterKey, source.description);
  try {
    return decodeRing(readFileSync(source.path!, 'utf8'), source.description);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code) throw new ConfigError('masterKey', `cannot read ${source.description}: ${code}`);
    throw e;
  }
}

/**
 * Replaces the key file with `keys` (one a line, the sealing key first), atomically: a crash
 * leaves the old file or the new one, never a part. Written 0600.
 */
export function writeKeyFile(path: string, keys: readonly Buffer[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, keys.map((k) => k.toString('base64')).join('\n') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename itself survives a power loss once the directory is synced.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** A new random master key. */
export function newMasterKey(): Buffer {
  return randomBytes(32);
}

/**
 * Creates `<dataDir>/master.key` (0600) holding a new random key. Should another process create
 * it meanwhile, that process's key is returned (the file is never overwritten).
 */
export function createMasterKeyFile(dataDir: string): Buffer {
  ensureDataDir(dataDir);
  const path = join(dataDir, MASTER_KEY_FILE);
  const key = newMasterKey();
  try {
    writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return decode(readFileSync(path, 'utf8'), `the key file ${path}`);
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
