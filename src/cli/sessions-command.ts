/** `sessions list|kill`: live console sessions of every proxy node sharing the store. */
import { Command, Option } from 'commander';
import { createServices } from '../app.js';
import { NotFoundError } from '../errors.js';
import { createLogger } from '../log.js';
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
        const freshSince = now - s.config.sessionStaleSeconds * 1000;
        const rows = await s.stores.sessions.listSessions({ freshSince, ...(o.server ? { serverId: o.server } : {}) });
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
        if (o.server) {
          const serverId = o.server as string;
          const listed = await s.stores.sessions.listSessions({ serverId, freshSince: now - s.config.sessionStaleSeconds * 1000 });
          if (listed.length === 0 && !(await s.inventory.findServer(serverId))) throw new NotFoundError('server', serverId);
          // NOTE: one change for the server, not one per listed row: every proxy node closes its
          // own sessions of the server, also those a node cut off from the store could not keep
          // listed (it reads the change when it is back).
          await s.stores.changes.appendChange({ at: now, kind: 'session-kill', serverId, sessionId: null });
          process.stdout.write(`asked every session of server ${serverId} to close (${listed.length} listed)\n`);
          return;
        }
        if (!id) throw new NotFoundError('session', '(give an id or --server)');
        const target = await s.stores.sessions.getSession(id);
        if (!target) throw new NotFoundError('session', id);
        // The owning node follows the change feed and closes the session within its poll interval.
        await s.stores.changes.appendChange({ at: now, kind: 'session-kill', serverId: target.serverId, sessionId: target.id });
        process.stdout.write('asked 1 session(s) to close\n');
      } finally {
        await s.close();
      }
    });
  return cmd;
}
