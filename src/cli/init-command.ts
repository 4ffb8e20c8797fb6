/**
 * `init`: creates the data directory, the store and the master key file when missing, and
 * records the key's check in the store. The only command besides `serve`, `api` and `proxy` that
 * creates any of them; running it again on an initialised store only verifies the key.
 */
import { Command, Option } from 'commander';
import { createServices, describeStore } from '../app.js';
import { commandLogger, configFrom, printObject, withConfigOptions } from './cli-support.js';

export function initCommand(): Command {
  return withConfigOptions(new Command('init').description('create the store and the master key (when missing) and record the key\'s check in the store'))
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const config = configFrom(o);
      const s = await createServices(config, { logger: commandLogger(config) }, 'create');
      try {
        const k = s.masterKey;
        const check = k.check.kind === 'verified' ? 'verified (the store was already initialised with this key)'
          : k.check.from === 'stored-secret' ? `recorded (the key opens the secrets already stored: ${k.check.secretsProbed - k.check.secretsUnreadable} of ${k.check.secretsProbed} checked)`
          : 'recorded (new store)';
        printObject({ store: describeStore(config), masterKey: `${k.source}${k.created ? ' (created)' : ''}`, keyId: k.keyId, keyCheck: check }, !!o.json);
      } finally {
        await s.close();
      }
    });
}
