/** `ecs-console recording policy set|list|remove` and `recording list`: session recording by policy. */
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { huaweiTime } from '../api/ecs-routes.js';
import { ValidationError } from '../errors.js';
import type { RecordingPolicy, RecordingRecord } from '../recording/types.js';
import { withServices } from './admin-commands.js';
import { printTable, withConfigOptions } from './cli-support.js';

const json = new Option('--json', 'print JSON');

/** `10GiB`, `500MB`, `1048576`: a byte count. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?$/i.exec(v.trim());
  if (!m) throw new ValidationError(`${JSON.stringify(v)} is not a size (e.g. 500MiB, 10GiB)`, 'quota');
  const unit = (m[2] ?? 'B').toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3, tb: 1e12, tib: 1024 ** 4 };
  return Math.round(Number(m[1]) * mult[unit]!);
}

function policyRow(p: RecordingPolicy): Record<string, string | number | null> {
  return {
    scope: p.scope, id: p.scopeId, project: p.projectId, recording: p.enabled ? 'on' : 'off', keystrokes: p.keystrokes ? 'on' : 'off',
    retentionDays: p.retentionDays, quotaBytes: p.quotaBytes, updated: huaweiTime(p.updatedAt), by: p.updatedBy,
  };
}

function recordingRow(r: RecordingRecord): Record<string, string | number | null> {
  return {
    id: r.id, session: r.sessionId, server: r.serverId, project: r.projectId, started: huaweiTime(r.startedAt),
    ended: r.endedAt === null ? null : huaweiTime(r.endedAt), seconds: Math.round(r.durationMs / 1000), bytes: r.bytes, keystrokes: r.keystrokes ? 'yes' : 'no',
  };
}

function scopeOf(o: { project?: string; server?: string }): { scope: 'project' | 'server'; scopeId: string } {
  if ((o.project === undefined) === (o.server === undefined)) throw new ValidationError('give --project or --server (one of them)', 'scope');
  return o.project !== undefined ? { scope: 'project', scopeId: o.project } : { scope: 'server', scopeId: o.server! };
}

export function recordingCommand(): Command {
  const cmd = new Command('recording').description('console session recording: policies (off unless set) and recordings');
  const policy = cmd.command('policy').description('who is recorded: per project, or per server (a server\'s policy wins over its project\'s)');
  withConfigOptions(policy.command('set').description('record (or stop recording) the consoles of a project or a server'))
    .option('--project <id>', 'the project\'s servers')
    .option('--server <id>', 'one server')
    .addOption(new Option('--on', 'record sessions').conflicts('off'))
    .addOption(new Option('--off', 'do not record sessions (a server set off is not recorded even when its project is)'))
    .option('--keystrokes', 'also record key events (they hold typed passwords; off unless given)')
    .option('--retention-days <n>', 'delete recordings this many days after they started (default 30)')
    .option('--quota <size>', 'project policy: most bytes of recordings kept (e.g. 10GiB); the oldest go first')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      if (!o.on && !o.off) throw new ValidationError('give --on or --off', 'enabled');
      const days = o.retentionDays === undefined ? undefined : Number(o.retentionDays);
      const p = await s.recordings.setPolicy({
        ...scopeOf(o), enabled: Boolean(o.on), keystrokes: Boolean(o.keystrokes),
        ...(days !== undefined ? { retentionDays: days } : {}), ...(o.quota !== undefined ? { quotaBytes: parseSize(String(o.quota)) } : {}),
        actor: `cli:${userInfo().username}`,
      });
      printTable([policyRow(p)], Boolean(o.json));
    }));
  withConfigOptions(policy.command('list').description('the policies set'))
    .option('--project <id>', 'only this project\'s')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => printTable((await s.recordings.listPolicies(o.project)).map(policyRow), Boolean(o.json))));
  withConfigOptions(policy.command('remove').description('remove a project\'s or a server\'s policy (a server then follows its project\'s)'))
    .option('--project <id>')
    .option('--server <id>')
    .action(async (o) => withServices(o, async (s) => {
      const { scope, scopeId } = scopeOf(o);
      if (!(await s.recordings.removePolicy(scope, scopeId))) throw new ValidationError(`no policy for ${scope} ${scopeId}`, 'scope');
    }));
  withConfigOptions(cmd.command('list').description('recordings, newest first'))
    .option('--project <id>')
    .option('--server <id>')
    .option('--session <id>')
    .option('--limit <n>', 'at most this many', '100')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const list = await s.recordings.list({
        ...(o.project ? { projectId: o.project } : {}), ...(o.server ? { serverId: o.server } : {}), ...(o.session ? { sessionId: o.session } : {}), limit: Number(o.limit),
      });
      printTable(list.map(recordingRow), Boolean(o.json));
    }));
  return cmd;
}
