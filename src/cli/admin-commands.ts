/** Operator commands: project, user, key, server. They call the same services as the API. */
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { createServices, type Services } from '../app.js';
import { huaweiTime } from '../api/ecs-routes.js';
import { ValidationError } from '../errors.js';
import type { Actor } from '../identity/types.js';
import { parseStatus } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import { commandLogger, configFrom, parseList, parsePort, printObject, printTable, readStdin, withConfigOptions } from './cli-support.js';

/** Runs `fn` with services over the configured store, closing them afterwards. */
async function withServices<T>(opts: Record<string, unknown>, fn: (s: Services) => Promise<T>): Promise<T> {
  const config = configFrom(opts);
  // CLI commands log warnings only, to stderr, so stdout stays clean for output.
  const s = await createServices(config, { logger: commandLogger(config) });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

function serverRow(s: Server): Record<string, string | number | null> {
  return {
    id: s.id, name: s.name, status: s.status, project: s.projectId, az: s.availabilityZone,
    console: `${s.console.host}:${s.console.port}`, auth: s.console.auth,
  };
}

function serverObject(s: Server): Record<string, unknown> {
  return {
    id: s.id, name: s.name, status: s.status, projectId: s.projectId, availabilityZone: s.availabilityZone,
    consoleHost: s.console.host, consolePort: s.console.port, consoleAuth: s.console.auth,
    consoleRevision: s.consoleRevision, created: huaweiTime(s.createdAt), updated: huaweiTime(s.updatedAt),
  };
}

async function passwordFrom(o: { password?: string; passwordStdin?: boolean }, what: string): Promise<string | undefined> {
  if (o.password !== undefined && o.passwordStdin) throw new ValidationError(`give --password or --password-stdin, not both`, 'password');
  if (o.passwordStdin) return readStdin();
  if (o.password === undefined) return undefined;
  if (o.password === '') throw new ValidationError(`${what} must not be empty`, 'password');
  return o.password;
}

const json = new Option('--json', 'print JSON');

export function projectCommand(): Command {
  const cmd = new Command('project').description('projects (tenants) of a domain');
  withConfigOptions(cmd.command('create').description('create a project (and its domain when new)'))
    .requiredOption('--name <name>', 'project name, e.g. cn-north-4')
    .option('--domain <name>', 'domain (account) name', 'default')
    .option('--id <hex32>', 'project id (32 hex digits); random when omitted')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const p = await s.identity.createProject({ name: o.name, domain: o.domain, ...(o.id ? { id: o.id } : {}) });
      printObject({ id: p.id, name: p.name, domain: o.domain }, !!o.json);
    }));
  withConfigOptions(cmd.command('list').description('list projects'))
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      printTable((await s.identity.listProjects()).map((p) => ({ id: p.id, name: p.name, domainId: p.domainId })), !!o.json);
    }));
  return cmd;
}

export function userCommand(): Command {
  const cmd = new Command('user').description('IAM users');
  withConfigOptions(cmd.command('create').description('create a user (password hashed with scrypt)'))
    .requiredOption('--name <name>', 'user name')
    .option('--domain <name>', 'domain (account) name', 'default')
    .option('--password <password>', 'password (8-128 characters); prefer --password-stdin')
    .option('--password-stdin', 'read the password from stdin')
    .option('--actions <list>', 'allowed actions, comma separated (default *), e.g. ecs:cloudServers:vnc,ecs:cloudServers:get')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const password = await passwordFrom(o, 'password');
      if (password === undefined) throw new ValidationError('a password is required: --password or --password-stdin', 'password');
      const actions = parseList(o.actions);
      const u = await s.identity.createUser({ domain: o.domain, name: o.name, password, ...(actions ? { actions } : {}) });
      printObject({ id: u.id, name: u.name, domain: o.domain, actions: u.actions.join(',') }, !!o.json);
    }));
  return cmd;
}

export function keyCommand(): Command {
  const cmd = new Command('key').description('access keys (AK/SK)');
  withConfigOptions(cmd.command('create').description('create an access key for a user in a project; prints the SK once'))
    .requiredOption('--user <name>', 'user name')
    .option('--domain <name>', 'domain (account) name', 'default')
    .requiredOption('--project <id>', 'project id the key acts for')
    .option('--actions <list>', 'allowed actions, comma separated (default *)')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const user = await s.identity.findUser(o.domain, o.user);
      const actions = parseList(o.actions);
      const k = await s.identity.createAccessKey({ userId: user.id, projectId: o.project, ...(actions ? { actions } : {}) });
      printObject({ ak: k.ak, sk: k.sk, project: k.key.projectId, actions: k.key.actions.join(',') }, !!o.json);
      if (!o.json) process.stderr.write('The secret key (sk) is shown only now: store it safely.\n');
    }));
  withConfigOptions(cmd.command('unlock')
    .description('lift the locks repeated signature failures set on an access key (per source address), and forget its failures')
    .argument('<ak>', 'access key id'))
    .option('--address <ip>', 'only the lock of this source address (as the API saw it)')
    .addOption(json)
    .action(async (ak: string, o) => withServices(o, async (s) => {
      const removed = await s.identity.unlockAccessKey(ak, o.address ?? null, cliActor());
      const now = s.clock.now();
      const unlocked = removed.filter((r) => r.lockedUntil !== null && r.lockedUntil > now).map((r) => r.address);
      if (o.json) {
        printObject({ ak, address: o.address ?? '*', unlocked, cleared: removed.length }, true);
        return;
      }
      for (const a of unlocked) process.stdout.write(`unlocked ${ak} for ${a}\n`);
      if (unlocked.length === 0) process.stdout.write(`${ak} was not locked${o.address ? ` for ${o.address}` : ''}\n`);
      if (removed.length > unlocked.length) process.stdout.write(`cleared the failure counts of ${removed.length - unlocked.length} other address(es)\n`);
    }));
  return cmd;
}

/** The operator running a CLI command, for audit records. */
function cliActor(): Actor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the uid still says something.
    name = `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return { userId: null, credential: `cli:${name}` };
}

function consoleInput(o: { host: string; port: string; auth?: string }, password: string | undefined) {
  const auth = (o.auth ?? (password !== undefined ? 'vnc-password' : 'none')) as 'none' | 'vnc-password';
  return { host: o.host, port: parsePort(o.port), auth, password: password ?? null };
}

export function serverCommand(): Command {
  const cmd = new Command('server').description('the server inventory');
  withConfigOptions(cmd.command('add').description('add a server and its VNC console target'))
    .requiredOption('--project <id>', 'project id')
    .requiredOption('--name <name>', 'server name')
    .requiredOption('--host <host>', 'VNC server host (as the proxy reaches it)')
    .requiredOption('--port <port>', 'VNC server port')
    .addOption(new Option('--auth <kind>', 'authentication to the VNC server').choices(['none', 'vnc-password']))
    .option('--password <password>', 'VNC password (1-8 bytes); prefer --password-stdin')
    .option('--password-stdin', 'read the VNC password from stdin')
    .option('--az <zone>', 'availability zone', 'az1')
    .option('--status <status>', 'status', 'ACTIVE')
    .option('--id <uuid>', 'server id; random when omitted')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      await s.identity.getProject(o.project);
      const password = await passwordFrom(o, 'VNC password');
      const srv = await s.inventory.addServer({
        projectId: o.project, name: o.name, status: parseStatus(o.status), availabilityZone: o.az,
        console: consoleInput(o, password), ...(o.id ? { id: o.id } : {}),
      });
      printObject(serverObject(srv), !!o.json);
    }));
  withConfigOptions(cmd.command('list').description('list servers'))
    .option('--project <id>', 'only this project')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      printTable((await s.inventory.listServers(o.project ? { projectId: o.project } : {})).map(serverRow), !!o.json);
    }));
  withConfigOptions(cmd.command('show').description('show one server').argument('<id>', 'server id'))
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => printObject(serverObject(await s.inventory.getServer(id)), !!o.json)));
  withConfigOptions(cmd.command('set-status').description('change a server\'s status; leaving ACTIVE revokes its console tokens and closes its sessions')
    .argument('<id>', 'server id').argument('<status>', 'new status, e.g. ACTIVE or SHUTOFF'))
    .addOption(json)
    .action(async (id: string, status: string, o) => withServices(o, async (s) => printObject(serverObject(await s.inventory.setStatus(id, parseStatus(status))), !!o.json)));
  withConfigOptions(cmd.command('set-console').description('change a server\'s VNC target; revokes its tokens and closes its sessions').argument('<id>', 'server id'))
    .requiredOption('--host <host>', 'VNC server host')
    .requiredOption('--port <port>', 'VNC server port')
    .addOption(new Option('--auth <kind>', 'authentication to the VNC server').choices(['none', 'vnc-password']))
    .option('--password <password>', 'VNC password (1-8 bytes)')
    .option('--password-stdin', 'read the VNC password from stdin')
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      const password = await passwordFrom(o, 'VNC password');
      printObject(serverObject(await s.inventory.setConsole(id, consoleInput(o, password))), !!o.json);
    }));
  withConfigOptions(cmd.command('remove').description('delete a server; revokes its tokens and closes its sessions').argument('<id>', 'server id'))
    .action(async (id: string, o) => withServices(o, async (s) => {
      const srv = await s.inventory.removeServer(id);
      process.stdout.write(`removed ${srv.id} (${srv.name})\n`);
    }));
  return cmd;
}
