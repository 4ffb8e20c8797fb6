/**
 * `serve`, `api` and `proxy`: run the service in the foreground. SIGTERM and SIGINT drain and
 * exit; SIGHUP reloads the TLS certificates and the log level (docs/deploy.md).
 */
import { Command } from 'commander';
import { createApp, type Role } from '../app.js';
import { listenerUrl, type Config } from '../config/config.js';
import { configFrom, withConfigOptions } from './cli-support.js';
import { checkDemoConfig, checkDemoSeparation, DEMO_DATA_DIR, prepareDemo } from './demo-mode.js';
import { openFilesLimit, openFilesNeeded } from '../util/open-files.js';

export function serveCommand(role: Role, description: string): Command {
  const cmd = withConfigOptions(new Command(role).description(description), 'all');
  if (role === 'serve') cmd.option('--demo', 'also run three demo VNC servers, create demo credentials on first start and print how to use them');
  cmd.action(async (o) => {
    let config = configFrom(o);
    // The demo keeps to its own data directory unless one (or a store) is configured; set as a
    // flag, so that a reload (SIGHUP) reads the same one.
    if (o.demo && config.sources['dataDir'] === 'default' && config.sources['store'] === 'default') {
      o.dataDir = DEMO_DATA_DIR;
      config = configFrom(o);
    }
    if (o.demo) checkDemoConfig(config);
    const app = await createApp(config, role);
    const { log } = app.services;
    try {
      await checkDemoSeparation(app.services, !!o.demo);
    } catch (e) {
      await app.stop();
      throw e;
    }
    log.info({ keyId: app.services.masterKey.keyId, source: app.services.masterKey.source, created: app.services.masterKey.created }, 'master key opens the store');
    const limit = openFilesLimit();
    const needed = openFilesNeeded(config, role);
    if (limit !== null && limit < needed) {
      log.warn({ limit, needed, proxyMaxSessions: config.proxyMaxSessions, apiMaxConnections: config.apiMaxConnections },
        'the open-file limit is below what the session and connection caps need: raise it (LimitNOFILE= under systemd, ulimit -n) or lower the caps');
    }
    const demo = o.demo ? await prepareDemo(app, log) : null;
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      app.stop().then(() => demo?.close()).then(
        () => process.exit(0),
        (e: unknown) => {
          log.error({ err: e }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    // SIGHUP reloads from the same sources (flags, environment, file) what can change live.
    const reload = (): void => {
      if (stopping) return;
      let next: Config;
      try {
        next = configFrom(o);
      } catch (e) {
        log.error({ signal: 'SIGHUP', error: (e as Error).message }, 'reload refused: the configuration is not valid; nothing changed');
        return;
      }
      void app.reload(next);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', reload);
    const addrs = await app.start();
    if (addrs.api) process.stderr.write(`ecs-console ${role}: API on ${listenerUrl(config, 'api', addrs.api)}\n`);
    if (addrs.proxy && app.proxy) process.stderr.write(`ecs-console ${role}: console proxy on ${listenerUrl(config, 'proxy', addrs.proxy)}\n`);
    if (demo && addrs.api && addrs.proxy) process.stdout.write((await demo.finish(addrs.api, addrs.proxy)).text);
  });
  return cmd;
}
