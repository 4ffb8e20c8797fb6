/** `audit list|export`: search the audit trail (same filters as the admin API), newest first. */
import { Command, Option } from 'commander';
import { once } from 'node:events';
import { auditJson, exportText, type AuditQueryInput } from '../audit/audit-service.js';
import { AUDIT_KINDS } from '../audit/types.js';
import { ValidationError } from '../errors.js';
import { withServices } from './admin-commands.js';
import { printTable, withConfigOptions } from './cli-support.js';

function withFilters(cmd: Command): Command {
  return cmd
    .option('--server <id>', 'events of this server')
    .option('--project <id>', 'events of this project')
    .option('--user <id>', 'events of this user (who opened a console, who acted)')
    .option('--access-key <ak>', 'events of this access key')
    .option('--credential <credential>', 'events of this credential as recorded (ak:<AK>, user:<id>, cli:<name>)')
    .option('--client-address <ip>', 'events from this client address')
    .option('--kind <kind>', AUDIT_KINDS.join(', '))
    .option('--outcome <outcome>', 'ok or refused')
    .option('--from <time>', 'at or after this time (ISO 8601, e.g. 2026-01-01T00:00:00Z)')
    .option('--to <time>', 'before this time (ISO 8601)');
}

function query(o: Record<string, string | undefined>): AuditQueryInput {
  const q: AuditQueryInput = {};
  const map: Array<[keyof AuditQueryInput, string]> = [
    ['server', 'server'], ['project', 'project'], ['user', 'user'], ['accessKey', 'accessKey'], ['credential', 'credential'],
    ['clientAddress', 'clientAddress'], ['kind', 'kind'], ['outcome', 'outcome'], ['from', 'from'], ['to', 'to'], ['marker', 'marker'], ['limit', 'limit'],
  ];
  for (const [k, flag] of map) if (o[flag] !== undefined) (q as Record<string, string>)[k] = o[flag]!;
  return q;
}

export function auditCommand(): Command {
  const cmd = new Command('audit').description('the audit trail: console URLs issued, sessions, refusals, operator actions');
  withFilters(withConfigOptions(cmd.command('list').description('search the audit trail, newest first')))
    .option('--limit <n>', 'at most this many (1-1000)', '50')
    .option('--marker <id>', 'continue after this record id (the last one of the previous page)')
    .addOption(new Option('--json', 'print JSON'))
    .action(async (o) => withServices(o, async (s) => {
      const page = await s.audit.search(query(o));
      if (o.json) {
        process.stdout.write(JSON.stringify({ events: page.events.map(auditJson), next_marker: page.nextMarker }, null, 2) + '\n');
        return;
      }
      printTable(page.events.map((e) => ({
        id: e.id ?? null, at: new Date(e.at).toISOString().replace(/\.\d{3}Z$/, 'Z'), kind: e.kind, outcome: e.outcome ?? '',
        server: e.serverId ?? '', actor: e.actorCredential ?? '', client: e.clientAddress ?? '',
        what: String(e.detail['action'] ?? e.detail['reason'] ?? ''),
      })), false);
      if (page.nextMarker) process.stderr.write(`more: --marker ${page.nextMarker}\n`);
    }));
  withFilters(withConfigOptions(cmd.command('export').description('write every matching record, newest first, as CSV (opens in a spreadsheet) or JSON lines')))
    .addOption(new Option('--format <format>', 'csv or json (one object a line)').choices(['csv', 'json']).default('csv'))
    .action(async (o) => withServices(o, async (s) => {
      if (o.marker !== undefined) throw new ValidationError('export takes no --marker', 'marker');
      for await (const piece of exportText(s.audit.export(query(o)), o.format === 'csv' ? 'csv' : 'json')) {
        // Waits for a pipe to take what it has, so that a large export is never held in memory.
        if (!process.stdout.write(piece)) await once(process.stdout, 'drain');
      }
    }));
  return cmd;
}
