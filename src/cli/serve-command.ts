/** `serve`, `api` and `proxy`: run the service in the foreground until SIGTERM/SIGINT. */
import { Command } from 'commander';
import { createApp, type Role } from '../app.js';
import { configFrom, withConfigOptions } from './cli-support.js';
import { prepareDemo } from './demo-mode.js';

export function serveCommand(role: Role, description: string): Command {
  const cmd = withConfigOptions(new Command(role).description(description), 'all');
  if (role === 'serve') cmd.option('--demo', 'also run three demo VNC servers, create demo credentials on first start and print how to use them');
  cmd.action(async (o) => {
    const config = configFrom(o);
    const app = await createApp(config, role);
    const demo = o.demo ? await prepareDemo(app, app.services.log) : null;
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      app.services.log.info({ signal }, 'stopping');
      app.stop().then(() => demo?.close()).then(
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
    if (demo && addrs.api && addrs.proxy) process.stdout.write((await demo.finish(addrs.api, addrs.proxy)).text);
  });
  return cmd;
}
