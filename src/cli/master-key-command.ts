/**
 * `master-key generate | add | rotate | status` (docs/deploy.md, "Rotating the master key").
 *
 * The key ring is the key file (one key a line) or `masterKey` (comma-separated); its first key
 * seals, every key opens. `add` records a new key's check in the store and, for the key file,
 * writes it first in the file with the old key after it; every node then needs the new ring
 * (SIGHUP reloads it). `rotate` re-seals every secret with the ring's first key, retires the
 * other keys' checks and, for the key file, keeps only the new key (the old ones go to
 * `master.key.retired-<key id>` for backups taken before). Killed at any moment, `rotate` run
 * again finishes the work.
 */
import { Command, Option } from 'commander';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeStore, openStores } from '../app.js';
import type { Config } from '../config/config.js';
import { MasterKeyError, ValidationError } from '../errors.js';
import { holdsAny, keyCheckOf } from '../secrets/key-check.js';
import { rotateMasterKey } from '../secrets/key-rotation.js';
import { MASTER_KEY_FILE, masterKeySource, newMasterKey, readMasterKeys, writeKeyFile } from '../secrets/master-key.js';
import { SecretBox } from '../secrets/secret-box.js';
import type { Stores } from '../store/stores.js';
import { commandLogger, configFrom, printObject, readStdin, withConfigOptions } from './cli-support.js';

/** The configured ring, or a MasterKeyError saying where none was found. */
function ringOf(config: Config): Buffer[] {
  const keys = readMasterKeys(config);
  if (!keys) throw new MasterKeyError(`no master key: ${masterKeySource(config).description} does not exist and masterKey is not set`);
  return keys;
}

async function withStores<T>(config: Config, fn: (stores: Stores) => Promise<T>): Promise<T> {
  const stores = await openStores(config, commandLogger(config), 'existing');
  try {
    return await fn(stores);
  } finally {
    await stores.close();
  }
}

function decodeKey(text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32 || key.toString('base64') !== text.trim()) throw new ValidationError('the new key must be the base64 encoding of exactly 32 bytes');
  return key;
}

export function masterKeyCommand(): Command {
  const cmd = new Command('master-key').description('the master key: generate, add a new one, rotate to it, status');

  cmd.command('generate').description('print a new random master key (base64), for masterKey or a key file').action(() => {
    process.stdout.write(newMasterKey().toString('base64') + '\n');
  });

  withConfigOptions(cmd.command('add').description('record a new master key in the store; with the key file, write it first in the file (the old key stays)'))
    .option('--key-stdin', 'read the new key (base64) from standard input instead of generating one')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const ring = ringOf(config);
      const source = masterKeySource(config);
      const fresh = o.keyStdin ? decodeKey(await readStdin()) : newMasterKey();
      const next = new SecretBox([fresh, ...ring]);
      if (ring.length > 1 && source.kind === 'file') {
        throw new ValidationError(`${source.description} already holds ${ring.length} keys (a rotation under way): finish it with \`ecs-console master-key rotate\` first`);
      }
      await withStores(config, async (stores) => {
        const checks = await stores.keyChecks.listKeyChecks();
        if (!holdsAny(new SecretBox(ring), checks)) {
          throw new MasterKeyError(`${source.description} (key ids ${new SecretBox(ring).keyIds.join(', ')}) holds none of the keys of the store ${describeStore(config)} (${checks.map((c) => c.keyId).join(', ') || 'none recorded'})`);
        }
        // The check first: a key file naming a key the store does not know would stop a restarting node.
        await stores.keyChecks.addKeyCheck(keyCheckOf(next, Date.now()));
      });
      if (source.kind === 'file') writeKeyFile(source.path!, [fresh, ...ring]);
      const steps = source.kind === 'file'
        ? `${source.description} now holds the new key first (it seals) and the old one (it opens). Reload every node using this store (SIGHUP, systemctl reload ecs-console), then run: ecs-console master-key rotate`
        : `Set masterKey on every node to "<new key>,${'<current key>'}" (new first), reload them (SIGHUP), then run ecs-console master-key rotate with that ring.`;
      printObject({
        keyId: next.keyId, ring: next.keyIds.join(', '), store: describeStore(config),
        ...(source.kind === 'configured' && !o.keyStdin ? { newKey: fresh.toString('base64') } : {}),
        next: steps,
      }, !!o.json);
    });

  withConfigOptions(cmd.command('rotate').description('re-seal every stored secret with the first key of the ring, then retire the other keys (run again after an interruption)'))
    .addOption(new Option('--batch <n>', 'secrets per transaction').default('200'))
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const batch = Number(o.batch);
      if (!Number.isSafeInteger(batch) || batch < 1 || batch > 10_000) throw new ValidationError(`--batch must be 1-10000, got ${JSON.stringify(o.batch)}`);
      const ring = ringOf(config);
      const box = new SecretBox(ring);
      const source = masterKeySource(config);
      const r = await withStores(config, (stores) => rotateMasterKey(stores.keyChecks, box, Date.now(), {
        batch,
        onBatch: (p) => process.stderr.write(`re-sealed ${p.resealed} secret(s) (pass ${p.pass}, ${p.scanned} looked at)\n`),
      }));
      const retiredFiles: string[] = [];
      if (source.kind === 'file' && ring.length > 1) {
        // The old keys still open backups taken before the rotation: kept beside, not in, the ring.
        for (const [i, key] of ring.entries()) {
          if (i === 0) continue;
          const path = join(config.dataDir, `${MASTER_KEY_FILE}.retired-${box.keyIds[i]}`);
          if (!existsSync(path)) writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
          retiredFiles.push(path);
        }
        writeKeyFile(source.path!, [ring[0]!]);
      }
      printObject({
        keyId: r.keyId, resealed: r.resealed, secrets: r.secrets, passes: r.passes, retired: r.retired.join(', ') || '(none)',
        ...(retiredFiles.length ? { retiredKeyFiles: retiredFiles.join(', ') } : {}),
        next: source.kind === 'file'
          ? `${source.description} holds only the new key. Nodes keep both keys until reloaded (SIGHUP) or restarted; a node holding only a retired key is refused.`
          : `Every secret is sealed with key id ${r.keyId}: set masterKey to that key alone on every node and reload them.`,
      }, !!o.json);
    });

  withConfigOptions(cmd.command('status').description('the ring\'s keys, the store\'s keys, and how many secrets each key seals'))
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const box = new SecretBox(ringOf(config));
      const out = await withStores(config, async (stores) => {
        const checks = await stores.keyChecks.listKeyChecks();
        const sealedWith: Record<string, number> = {};
        let unreadable = 0;
        for (let after: string | null = null; ;) {
          const page = await stores.keyChecks.sealedSecretsAfter(after, 1000);
          if (page.length === 0) break;
          after = page[page.length - 1]!.aad;
          for (const s of page) {
            const opened = box.openWithId(s.sealed, s.aad);
            if (opened) sealedWith[opened.keyId] = (sealedWith[opened.keyId] ?? 0) + 1;
            else unreadable++;
          }
        }
        return { ring: box.keyIds, storeKeys: checks.map((c) => c.keyId), sealedWith, unreadable };
      });
      printObject(o.json ? out : {
        ring: out.ring.join(', '), storeKeys: out.storeKeys.join(', '),
        sealedWith: Object.entries(out.sealedWith).map(([k, n]) => `${k}=${n}`).join(' ') || '(no secret)', unreadable: out.unreadable,
      }, !!o.json);
    });
  return cmd;
}
