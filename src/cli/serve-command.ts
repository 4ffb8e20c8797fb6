/** `serve`, `api` and `proxy`: run the service in the foreground until SIGTERM/SIGINT. */
import { Command } from 'commander';
import { createApp, type Role } from '../app.js';
import { configFrom, withConfigOptions } from './cli-support.js';

export function serveCommand(role: Role, description: string): Command {
  const cmd = withConfigOptions(new Command(role).description(description), 'all');
  cmd.action(async (o) => {
    const config = configFrom(o);
    const app = await createApp(config, role);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      app.services.log.info({ signal }, 'stopping');
      app.stop().then(
        () => process.exit(0),
        (e: unknown) => {
          app.services.log.error({ err: e }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const addrs = await app.start();
    if (addrs.api) process.stderr.write(`ecs-console ${role}: API on http://${addrs.api.host}:${addrs.api.port}\n`);
    if (addrs.proxy && app.proxy) process.stderr.write(`ecs-console ${role}: console proxy on ${config.proxyTlsCert ? 'https' : 'http'}://${addrs.proxy.host}:${addrs.proxy.port}\n`);
  });
  return cmd;
}
