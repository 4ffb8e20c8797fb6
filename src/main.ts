#!/usr/bin/env -S node --initial-old-space-size=64
/**
 * ecs-console: the command-line entry point.
 * The shebang starts V8 with a 64 MiB old space: relaying hundreds of MB/s otherwise triggers a
 * full garbage collection every ~30 MB while the heap grows from its small default (measured in
 * docs/benchmarks.md). Run it as `node --initial-old-space-size=64 dist/src/main.js` elsewhere.
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { configDoc } from './config/config.js';
import { keyCommand, projectCommand, serverCommand, userCommand } from './cli/admin-commands.js';
import { backupCommand, restoreCommand } from './cli/backup-command.js';
import { reportError } from './cli/cli-support.js';
import { consoleUrlCommand } from './cli/console-url-command.js';
import { demoVncCommand } from './cli/demo-vnc-command.js';
import { initCommand } from './cli/init-command.js';
import { masterKeyCommand } from './cli/master-key-command.js';
import { serveCommand } from './cli/serve-command.js';
import { sessionsCommand } from './cli/sessions-command.js';
import { auditCommand } from './cli/audit-command.js';
import { storeCommand } from './cli/store-command.js';
import { recordingCommand } from './cli/recording-command.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

const program = new Command('ecs-console')
  .description('Self-hosted, Huawei-Cloud-ECS-compatible remote console service (API, one-time tokens, noVNC proxy)')
  .version(pkg.version)
  .showHelpAfterError('(run with --help for usage)');

program.addCommand(serveCommand('serve', 'run the API and the console proxy in one process'));
program.addCommand(serveCommand('api', 'run the API only (fleets: several API nodes share PostgreSQL)'));
program.addCommand(serveCommand('proxy', 'run the console proxy only (fleets: several proxy nodes share PostgreSQL)'));
program.addCommand(initCommand());
program.addCommand(projectCommand());
program.addCommand(userCommand());
program.addCommand(keyCommand());
program.addCommand(serverCommand());
program.addCommand(sessionsCommand());
program.addCommand(recordingCommand());
program.addCommand(auditCommand());
program.addCommand(backupCommand());
program.addCommand(restoreCommand());
program.addCommand(storeCommand());
program.addCommand(masterKeyCommand());
program.addCommand(consoleUrlCommand());
program.addCommand(demoVncCommand());
program.command('config-doc').description('print the table of configuration options (docs/config.md)').action(() => {
  process.stdout.write(configDoc() + '\n');
});

/** Commands that keep running after they printed: a closed standard output must not end them. */
const LONG_RUNNING = new Set(['serve', 'api', 'proxy', 'demo-vnc']);
let running = '';
program.hook('preAction', (_program, action) => {
  running = action.name();
});

// `ecs-console sessions list | head`: the reader went away (EPIPE). What was left to print has no
// reader, so a command stops quietly with the status it has (as one ended by SIGPIPE would, but
// without a stack trace); a server goes on serving. Any other failure to write is reported in one line.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') {
    if (!LONG_RUNNING.has(running)) process.exit(process.exitCode ?? 0);
    return;
  }
  process.stderr.write(`error: cannot write to standard output: ${e.message}\n`);
  process.exit(1);
});

program.parseAsync(process.argv).catch((e: unknown) => {
  process.exitCode = reportError(e);
});
