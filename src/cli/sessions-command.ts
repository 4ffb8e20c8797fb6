/** `sessions list|kill`: live console sessions of every proxy node sharing the store. */
import { Command, Option } from 'commander';
import { ValidationError } from '../errors.js';
import { cliContext, withServices } from './admin-commands.js';
import { printTable, withConfigOptions } from './cli-support.js';

export function sessionsCommand(): Command {
  const cmd = new Command('sessions').description('live console sessions (all proxy nodes)');
  withConfigOptions(cmd.command('list').description('list live sessions'))
    .option('--server <id>', 'only this server')
    .option('--project <id>', 'only this project')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => withServices(o, async (s) => {
      const now = s.clock.now();
      const rows = await s.sessions.list({ ...(o.server ? { serverId: o.server } : {}), ...(o.project ? { projectId: o.project } : {}) });
      printTable(rows.map((r) => ({
        id: r.id, server: r.serverId, name: r.serverName, user: r.userId, credential: r.credential, project: r.projectId, node: r.nodeId,
        client: r.clientAddress, started: new Date(r.startedAt).toISOString().replace(/\.\d{3}Z$/, 'Z'), minutes: Math.floor((now - r.startedAt) / 60000),
        bytesToClient: r.bytesToClient, bytesToBackend: r.bytesToBackend, token: r.tokenRef,
      })), !!o.json);
    }));
  withConfigOptions(cmd.command('kill').description('end a session (or every session of a server) with a reason shown to the user'))
    .argument('[id]', 'session id (see `sessions list`)')
    .option('--server <id>', 'every session of this server')
    .option('--reason <text>', 'shown on the user\'s console page and kept in the audit trail (at most 80 characters)')
    .action(async (id: string | undefined, o) => withServices(o, async (s) => {
      if (!id && !o.server) throw new ValidationError('give a session id (see `ecs-console sessions list`) or --server <id> to end every session of a server', 'session');
      if (id && o.server) throw new ValidationError('give a session id or --server, not both', 'session');
      const r = await s.sessions.kill(id ? { sessionId: id } : { serverId: o.server as string }, o.reason, cliContext());
      // The owning node follows the change feed and closes the session within its poll interval.
      if (r.sessionId) process.stdout.write('asked 1 session(s) to close\n');
      else process.stdout.write(`asked every session of server ${r.serverId} to close (${r.listed} listed)\n`);
    }));
  return cmd;
}
