/** `sessions list|kill`: live console sessions of every proxy node sharing the store. */
import { Command, Option } from 'commander';
import { createServices } from '../app.js';
import { NotFoundError } from '../errors.js';
import { createLogger } from '../log.js';
import { STALE_MS } from '../proxy/proxy-server.js';
import { configFrom, printTable, withConfigOptions } from './cli-support.js';

export function sessionsCommand(): Command {
  const cmd = new Command('sessions').description('live console sessions (all proxy nodes)');
  withConfigOptions(cmd.command('list').description('list live sessions'))
    .option('--server <id>', 'only this server')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => {
      const s = await createServices(configFrom(o), { logger: createLogger({ level: 'warn', destination: process.stderr }) });
      try {
        const now = s.clock.now();
        const rows = await s.stores.sessions.listSessions({ freshSince: now - STALE_MS, ...(o.server ? { serverId: o.server } : {}) });
        printTable(rows.map((r) => ({
          id: r.id, server: r.serverId, project: r.projectId, node: r.nodeId, client: r.clientAddress,
          started: new Date(r.startedAt).toISOString().replace(/\.\d{3}Z$/, 'Z'), minutes: Math.floor((now - r.startedAt) / 60000), token: r.tokenRef,
        })), !!o.json);
      } finally {
        await s.close();
      }
    });
  withConfigOptions(cmd.command('kill').description('end a session (or all sessions of a server) with a reason shown to the user'))
    .argument('[id]', 'session id')
    .option('--server <id>', 'every session of this server')
    .action(async (id: string | undefined, o) => {
      const s = await createServices(configFrom(o), { logger: createLogger({ level: 'warn', destination: process.stderr }) });
      try {
        const now = s.clock.now();
        const targets = o.server
          ? await s.stores.sessions.listSessions({ serverId: o.server, freshSince: now - STALE_MS })
          : id ? [await s.stores.sessions.getSession(id)].filter((x) => x !== null) : null;
        if (targets === null) throw new NotFoundError('session', '(give an id or --server)');
        if (targets.length === 0) throw new NotFoundError('session', id ?? o.server);
        // The owning node follows the change feed and closes the session within its poll interval.
        for (const t of targets) await s.stores.changes.appendChange({ at: now, kind: 'session-kill', serverId: t.serverId, sessionId: t.id });
        process.stdout.write(`asked ${targets.length} session(s) to close\n`);
      } finally {
        await s.close();
      }
    });
  return cmd;
}
