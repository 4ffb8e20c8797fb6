/** Operator commands: project, user, key, server. They call the same services as the API. */
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { createBackends, createServices, type Services } from '../app.js';
import { huaweiTime } from '../api/ecs-routes.js';
import { BackendError, NotFoundError, ValidationError } from '../errors.js';
import type { Caller } from '../identity/iam-admin-service.js';
import type { AccessKey, Actor, Project, User } from '../identity/types.js';
import { readFileSync } from 'node:fs';
import { describeTarget, parseStatus, type ConsoleTargetInput, type OperatorContext, type ServerSyncItem } from '../inventory/inventory-service.js';
import { TARGET_KINDS, type Server } from '../inventory/types.js';
import { commandLogger, configFrom, parseList, parsePort, printObject, printTable, readStdin, withConfigOptions } from './cli-support.js';

/** Runs `fn` with services over the configured store, closing them afterwards. */
export async function withServices<T>(opts: Record<string, unknown>, fn: (s: Services) => Promise<T>): Promise<T> {
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
    kind: s.console.kind, console: describeTarget(s.console), auth: s.console.auth,
  };
}

function serverObject(s: Server): Record<string, unknown> {
  const c = s.console;
  return {
    id: s.id, name: s.name, status: s.status, projectId: s.projectId, availabilityZone: s.availabilityZone,
    consoleKind: c.kind,
    ...(c.kind === 'libvirt' ? { libvirtUri: c.uri, libvirtDomain: c.domain, consoleHost: c.host } : { consoleHost: c.host, consolePort: c.port }),
    ...(c.kind === 'qemu-qmp' ? { qmp: c.qmp } : {}),
    consoleAuth: c.auth, consoleTls: c.tls ? c.tls.serverName : null, consoleSerial: c.serial ?? null,
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

/** The operator running a CLI command, as the identity lifecycle's caller (may do everything). */
function operator(): Caller {
  return { principal: null, actor: cliActor() };
}

/** A user by name in `domain`, or by id. */
async function userByNameOrId(s: Services, domain: string, nameOrId: string): Promise<User> {
  if (/^[0-9a-f]{32}$/.test(nameOrId)) {
    const u = await s.stores.identity.getUser(nameOrId);
    if (u) return u;
  }
  return s.identity.findUser(domain, nameOrId);
}

/** One user, as `user list` and `user show` print it (the same fields). */
function userRow(u: User, domainName: string): Record<string, string | number | null> {
  return {
    id: u.id, name: u.name, domain: domainName, enabled: String(u.enabled !== false), admin: String(u.admin === true),
    description: u.description ?? '', actions: u.actions.join(','), created: huaweiTime(u.createdAt),
  };
}

/** One access key, as `key list` and `key show` print it (the same fields; never the SK). */
function keyRow(k: AccessKey, userName: string): Record<string, string | number | null> {
  const temporary = (k.expiresAt ?? null) !== null;
  return {
    ak: k.ak, user: userName, userId: k.userId, project: k.projectId, status: k.status ?? 'active', type: temporary ? 'temporary' : 'permanent',
    description: k.description ?? '', actions: k.actions.join(','), created: huaweiTime(k.createdAt), expires: temporary ? huaweiTime(k.expiresAt!) : null,
  };
}

/** One project, as `project list` and `project show` print it (the same fields). */
function projectRow(p: Project, domainName: string): Record<string, string | number | null> {
  return { id: p.id, name: p.name, domain: domainName, domainId: p.domainId, description: p.description ?? '', created: huaweiTime(p.createdAt) };
}

async function domainName(s: Services, id: string): Promise<string> {
  return (await s.stores.identity.getDomain(id))?.name ?? id;
}

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
    .option('--domain <name>', 'only this domain\'s projects')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const domain = o.domain ? await s.stores.identity.getDomainByName(o.domain) : null;
      if (o.domain && !domain) throw new NotFoundError('domain', o.domain);
      const projects = await s.iam.listProjects(operator(), domain ? { domainId: domain.id } : {});
      printTable(await Promise.all(projects.map(async (p) => projectRow(p, await domainName(s, p.domainId)))), !!o.json);
    }));
  withConfigOptions(cmd.command('show').description('show one project').argument('<id>', 'project id'))
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      const p = await s.iam.showProject(operator(), id);
      printObject(projectRow(p, await domainName(s, p.domainId)), !!o.json);
    }));
  withConfigOptions(cmd.command('update').description('rename a project or change its description').argument('<id>', 'project id'))
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      if (o.name === undefined && o.description === undefined) throw new ValidationError('give --name or --description', 'name');
      const p = await s.iam.updateProject(operator(), id, { ...(o.name !== undefined ? { name: o.name } : {}), ...(o.description !== undefined ? { description: o.description } : {}) });
      printObject(projectRow(p, await domainName(s, p.domainId)), !!o.json);
    }));
  withConfigOptions(cmd.command('delete').description('delete a project without servers or access keys').argument('<id>', 'project id'))
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      await s.iam.deleteProject(operator(), id);
      printObject({ id, deleted: 'true' }, !!o.json);
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
    .option('--admin', 'a domain administrator (Huawei\'s admin group): manages the users, keys and projects of its domain through the IAM API')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const password = await passwordFrom(o, 'password');
      if (password === undefined) throw new ValidationError('a password is required: --password or --password-stdin', 'password');
      const actions = parseList(o.actions);
      const u = await s.identity.createUser({ domain: o.domain, name: o.name, password, admin: !!o.admin, ...(actions ? { actions } : {}) });
      printObject({ id: u.id, name: u.name, domain: o.domain, actions: u.actions.join(','), admin: u.admin === true }, !!o.json);
    }));
  withConfigOptions(cmd.command('list').description('list the users of a domain'))
    .option('--domain <name>', 'domain (account) name', 'default')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const d = await s.stores.identity.getDomainByName(o.domain);
      if (!d) throw new NotFoundError('domain', o.domain);
      printTable((await s.iam.listUsers(operator(), d.id)).map((u) => userRow(u, d.name)), !!o.json);
    }));
  const oneUser = (name: string, description: string): Command => withConfigOptions(cmd.command(name).description(description).argument('<user>', 'user name (or id)'))
    .option('--domain <name>', 'domain (account) name', 'default')
    .addOption(json);
  oneUser('show', 'show one user').action(async (name: string, o) => withServices(o, async (s) => {
    const u = await userByNameOrId(s, o.domain, name);
    printObject(userRow(u, await domainName(s, u.domainId)), !!o.json);
  }));
  for (const [verb, enabled] of [['disable', false], ['enable', true]] as const) {
    oneUser(verb, enabled ? 'enable a user' : 'disable a user: their IAM tokens end, their keys and temporary credentials are refused, their consoles close')
      .action(async (name: string, o) => withServices(o, async (s) => {
        const u = await s.iam.updateUser(operator(), (await userByNameOrId(s, o.domain, name)).id, { enabled });
        printObject(userRow(u, await domainName(s, u.domainId)), !!o.json);
      }));
  }
  oneUser('passwd', 'set a user\'s password: their IAM tokens end')
    .option('--password <password>', 'new password (8-128 characters); prefer --password-stdin')
    .option('--password-stdin', 'read the new password from stdin')
    .action(async (name: string, o) => withServices(o, async (s) => {
      const password = await passwordFrom(o, 'password');
      if (password === undefined) throw new ValidationError('a password is required: --password or --password-stdin', 'password');
      const u = await userByNameOrId(s, o.domain, name);
      await s.iam.changePassword(operator(), u.id, '', password);
      printObject({ id: u.id, name: u.name, password: 'changed' }, !!o.json);
    }));
  oneUser('delete', 'delete a user with their access keys and IAM tokens; their consoles close')
    .action(async (name: string, o) => withServices(o, async (s) => {
      const u = await userByNameOrId(s, o.domain, name);
      await s.iam.deleteUser(operator(), u.id);
      printObject({ id: u.id, name: u.name, deleted: 'true' }, !!o.json);
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
    .option('--description <text>', 'what the key is for')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const user = await s.identity.findUser(o.domain, o.user);
      const actions = parseList(o.actions);
      const k = await s.iam.createAccessKey(operator(), {
        userId: user.id, projectId: o.project, ...(actions ? { actions } : {}), ...(o.description !== undefined ? { description: o.description } : {}),
      });
      printObject({ ak: k.key.ak, sk: k.sk, project: k.key.projectId, actions: k.key.actions.join(',') }, !!o.json);
      if (!o.json) process.stderr.write('The secret key (sk) is shown only now: store it safely.\n');
    }));
  withConfigOptions(cmd.command('list').description('list access keys (never their SKs): a user\'s, or every key of a domain'))
    .option('--domain <name>', 'domain (account) name', 'default')
    .option('--user <name>', 'only this user\'s keys')
    .option('--temporary', 'include temporary credentials')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const d = await s.stores.identity.getDomainByName(o.domain);
      if (!d) throw new NotFoundError('domain', o.domain);
      const users = o.user ? [await userByNameOrId(s, o.domain, o.user)] : await s.stores.identity.listUsers(d.id);
      const rows: Array<Record<string, string | number | null>> = [];
      for (const u of users) {
        for (const k of await s.stores.identity.listAccessKeys(u.id)) if (o.temporary || (k.expiresAt ?? null) === null) rows.push(keyRow(k, u.name));
      }
      printTable(rows, !!o.json);
    }));
  const oneKey = (name: string, description: string): Command => withConfigOptions(cmd.command(name).description(description).argument('<ak>', 'access key id'))
    .addOption(json);
  oneKey('show', 'show one access key (never its SK)').action(async (ak: string, o) => withServices(o, async (s) => {
    const k = await s.iam.showAccessKey(operator(), ak);
    printObject(keyRow(k, (await s.stores.identity.getUser(k.userId))?.name ?? k.userId), !!o.json);
  }));
  for (const [verb, status] of [['disable', 'inactive'], ['enable', 'active']] as const) {
    oneKey(verb, status === 'inactive' ? 'deactivate an access key: refused at once on every node, its consoles close' : 'activate an access key again')
      .action(async (ak: string, o) => withServices(o, async (s) => {
        const k = await s.iam.updateAccessKey(operator(), ak, { status });
        printObject(keyRow(k, (await s.stores.identity.getUser(k.userId))?.name ?? k.userId), !!o.json);
      }));
  }
  oneKey('delete', 'delete an access key: refused at once on every node, its consoles close').action(async (ak: string, o) => withServices(o, async (s) => {
    await s.iam.deleteAccessKey(operator(), ak);
    printObject({ ak, deleted: 'true' }, !!o.json);
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
export function cliActor(): Actor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the uid still says something.
    name = `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return { userId: null, credential: `cli:${name}` };
}

/** The audit context of a CLI operator action. */
export function cliContext(): OperatorContext {
  return { actor: cliActor(), door: 'cli' };
}

interface TargetFlags {
  kind?: string;
  host?: string;
  port?: string;
  auth?: string;
  qmp?: string;
  libvirtUri?: string;
  domain?: string;
  tls?: boolean;
  tlsName?: string;
  serial?: string;
}

/** The console target flags as the inventory's input (it validates them and names a bad field). */
function consoleInput(o: TargetFlags, password: string | undefined): ConsoleTargetInput {
  return {
    kind: o.kind ?? 'static', host: o.host ?? null, port: o.port === undefined ? null : parsePort(o.port), auth: o.auth ?? null,
    password: password ?? null, qmp: o.qmp ?? null, uri: o.libvirtUri ?? null, domain: o.domain ?? null, tls: o.tls ?? false, tlsName: o.tlsName ?? null,
    serial: o.serial ?? null,
  };
}

/** Only the console target flags given (a partial change keeps the rest of the target). */
function consolePatch(o: TargetFlags, password: string | undefined): ConsoleTargetInput | undefined {
  const c: ConsoleTargetInput = {
    ...(o.kind !== undefined ? { kind: o.kind } : {}), ...(o.host !== undefined ? { host: o.host } : {}),
    ...(o.port !== undefined ? { port: parsePort(o.port) } : {}), ...(o.auth !== undefined ? { auth: o.auth } : {}),
    ...(password !== undefined ? { password } : {}), ...(o.qmp !== undefined ? { qmp: o.qmp } : {}),
    ...(o.libvirtUri !== undefined ? { uri: o.libvirtUri } : {}), ...(o.domain !== undefined ? { domain: o.domain } : {}),
    ...(o.tls !== undefined ? { tls: o.tls } : {}), ...(o.tlsName !== undefined ? { tlsName: o.tlsName } : {}),
    ...(o.serial !== undefined ? { serial: o.serial } : {}),
  };
  return Object.keys(c).length > 0 ? c : undefined;
}

/** The console target flags of `server add`, `server set-console` and `server update`. */
function withTargetOptions(cmd: Command, kindDefault: string | null = 'static'): Command {
  const kind = new Option('--kind <kind>', 'how the proxy reaches the console: static (a VNC address), qemu-qmp (QEMU VNC + QMP, one-time passwords), libvirt (a domain, one-time passwords)').choices([...TARGET_KINDS]);
  return cmd
    .addOption(kindDefault === null ? kind : kind.default(kindDefault))
    .option('--host <host>', 'VNC server host as the proxy reaches it (static, qemu-qmp; libvirt: overrides the address in the domain\'s XML)')
    .option('--port <port>', 'VNC server port (static, qemu-qmp)')
    .addOption(new Option('--auth <kind>', 'static: authentication to the VNC server').choices(['none', 'vnc-password']))
    .option('--password <password>', 'static: VNC password (1-8 bytes); prefer --password-stdin')
    .option('--password-stdin', 'static: read the VNC password from stdin')
    .option('--qmp <address>', 'qemu-qmp: the QMP monitor, unix:/path or tcp:host:port')
    .option('--libvirt-uri <uri>', 'libvirt: connection URI, e.g. qemu:///system')
    .option('--domain <name>', 'libvirt: domain name or UUID')
    .option('--tls', 'require TLS to the VNC server (VeNCrypt with X.509 certificates; see backendTlsCa)')
    .option('--tls-name <name>', 'name the VNC server\'s certificate must carry (default: the host); implies --tls')
    .option('--serial <address>', 'the VM\'s serial port (any kind), unix:/path or tcp:host:port (QEMU -chardev socket,server=on)');
}

export function serverCommand(): Command {
  const cmd = new Command('server').description('the server inventory');
  withTargetOptions(withConfigOptions(cmd.command('add').description('add a server and its console target')))
    .requiredOption('--project <id>', 'project id')
    .requiredOption('--name <name>', 'server name')
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
      }, cliContext());
      printObject(serverObject(srv), !!o.json);
    }));
  withConfigOptions(cmd.command('list').description('list servers'))
    .option('--project <id>', 'only this project')
    .option('--az <zone>', 'only this availability zone')
    .option('--status <status>', 'only servers in this status')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const list = await s.inventory.listServers({
        ...(o.project ? { projectId: o.project } : {}), ...(o.az ? { availabilityZone: o.az } : {}), ...(o.status ? { status: parseStatus(o.status) } : {}),
      });
      // JSON: the fields `server show --json` prints, named the same; the table is the short view.
      if (o.json) process.stdout.write(JSON.stringify(list.map(serverObject), null, 2) + '\n');
      else printTable(list.map(serverRow), false);
    }));
  withConfigOptions(cmd.command('show').description('show one server').argument('<id>', 'server id'))
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => printObject(serverObject(await s.inventory.getServer(id)), !!o.json)));
  withConfigOptions(cmd.command('set-status').description('change a server\'s status; leaving ACTIVE revokes its console tokens and closes its sessions')
    .argument('<id>', 'server id').argument('<status>', 'new status, e.g. ACTIVE or SHUTOFF'))
    .addOption(json)
    .action(async (id: string, status: string, o) => withServices(o, async (s) => printObject(serverObject(await s.inventory.setStatus(id, parseStatus(status), cliContext())), !!o.json)));
  withTargetOptions(withConfigOptions(cmd.command('set-console').description('change a server\'s console target: only the flags given change (the rest stays); a new place (host, port, kind...) revokes its tokens and closes its sessions, a new password alone does not').argument('<id>', 'server id')), null)
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      const password = await passwordFrom(o, 'VNC password');
      const c = consolePatch(o, password);
      if (!c) throw new ValidationError('give at least one console flag to change (--host, --port, --password-stdin, ...)', 'console');
      printObject(serverObject(await s.inventory.updateServer(id, { console: c }, cliContext())), !!o.json);
    }));
  withTargetOptions(withConfigOptions(cmd.command('update').description('change only what is given: name, status, zone, console target fields; a new password alone leaves live sessions alone, a new place or leaving ACTIVE ends them').argument('<id>', 'server id')), null)
    .option('--name <name>', 'new name')
    .option('--status <status>', 'new status, e.g. ACTIVE or SHUTOFF')
    .option('--az <zone>', 'new availability zone')
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      const password = await passwordFrom(o, 'VNC password');
      const c = consolePatch(o, password);
      if (!c && o.name === undefined && o.status === undefined && o.az === undefined) {
        throw new ValidationError('nothing to change: give --name, --status, --az or console flags', 'server');
      }
      printObject(serverObject(await s.inventory.updateServer(id, {
        ...(o.name !== undefined ? { name: o.name } : {}), ...(o.status !== undefined ? { status: o.status } : {}),
        ...(o.az !== undefined ? { availabilityZone: o.az } : {}), ...(c ? { console: c } : {}),
      }, cliContext())), !!o.json);
    }));
  withConfigOptions(cmd.command('sync').description('make a project\'s (or zone\'s) servers equal a file\'s list, in one transaction: create, update, delete, revoke; --dry-run prints the plan'))
    .requiredOption('--file <path>', 'JSON: {"project_id": "...", "availability_zone"?: "...", "servers": [{"id", "name", "status"?, "availability_zone"?, "console": {...}}]}')
    .option('--dry-run', 'print what would change, change nothing')
    .addOption(json)
    .action(async (o) => withServices(o, async (s) => {
      const body = readSyncFile(o.file as string);
      await s.identity.getProject(body.projectId);
      const r = await s.inventory.syncServers(
        { projectId: body.projectId, ...(body.availabilityZone ? { availabilityZone: body.availabilityZone } : {}) },
        body.servers, { dryRun: !!o.dryRun }, cliContext());
      if (o.json) {
        printObject({ ...r }, true);
        return;
      }
      const verb = r.dryRun ? 'would ' : '';
      process.stdout.write(`${r.dryRun ? 'plan (dry run, nothing changed)' : 'synced'}: ${verb}create ${r.created.length}, ${verb}update ${r.updated.length}, ${verb}delete ${r.deleted.length}, ${verb}revoke ${r.revoked.length}, unchanged ${r.unchanged}\n`);
      for (const id of r.created) process.stdout.write(`  + ${id}\n`);
      for (const u of r.updated) process.stdout.write(`  ~ ${u.id} (${u.changed.join(', ')})\n`);
      for (const id of r.deleted) process.stdout.write(`  - ${id}\n`);
    }));
  withConfigOptions(cmd.command('check').description('reach and log in to a server\'s console as the proxy would (connect, TLS, certificate, password, QMP/libvirt), then hang up; no console is opened').argument('<id>', 'server id'))
    .option('--timeout <seconds>', 'give up after this long', '20')
    .addOption(json)
    .action(async (id: string, o) => withServices(o, async (s) => {
      const server = await s.inventory.getServer(id);
      const timeout = Number(o.timeout);
      if (!Number.isInteger(timeout) || timeout < 1 || timeout > 600) throw new ValidationError('--timeout must be 1-600 seconds', 'timeout');
      const backends = createBackends(s);
      try {
        const r = await backends.check(s.inventory.resolveTarget(server), timeout * 1000);
        printObject({ ok: true, server: server.id, kind: server.console.kind, address: r.address, tls: r.tls ?? 'no', auth: r.auth, rfb: r.rfbVersion, desktop: `${r.width}x${r.height}` }, !!o.json);
      } catch (e) {
        if (!(e instanceof BackendError)) throw e;
        printObject({ ok: false, server: server.id, kind: server.console.kind, failed: e.failure, reason: e.message }, !!o.json);
        process.exitCode = 1;
      }
    }));
  withConfigOptions(cmd.command('remove').description('delete a server; revokes its tokens and closes its sessions').argument('<id>', 'server id'))
    .action(async (id: string, o) => withServices(o, async (s) => {
      const srv = await s.inventory.removeServer(id, cliContext());
      process.stdout.write(`removed ${srv.id} (${srv.name})\n`);
    }));
  return cmd;
}

/** A bulk sync body as the admin API takes it (snake_case, as Huawei's APIs), from a file. */
function readSyncFile(path: string): { projectId: string; availabilityZone?: string; servers: ServerSyncItem[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ValidationError(`cannot read ${path} as JSON: ${(e as Error).message}`, 'file');
  }
  return syncBody(raw);
}

/** Checks the shape of a bulk sync body (the inventory checks each server). */
export function syncBody(raw: unknown): { projectId: string; availabilityZone?: string; servers: ServerSyncItem[] } {
  const o = raw as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new ValidationError('the sync body must be a JSON object with project_id and servers', 'body');
  if (typeof o['project_id'] !== 'string') throw new ValidationError('project_id is required', 'project_id');
  if (!Array.isArray(o['servers'])) throw new ValidationError('servers must be an array (the complete list; [] deletes every server of the scope)', 'servers');
  const az = o['availability_zone'];
  if (az !== undefined && typeof az !== 'string') throw new ValidationError('availability_zone must be a string', 'availability_zone');
  const servers = (o['servers'] as unknown[]).map((x, i) => serverItem(x, `servers[${i}]`));
  return { projectId: o['project_id'], ...(typeof az === 'string' ? { availabilityZone: az } : {}), servers };
}

/** One server of a sync body: `{id, name, status?, availability_zone?, console: {kind?, host?, port?, ...}}`. */
export function serverItem(x: unknown, at: string): ServerSyncItem {
  if (!x || typeof x !== 'object' || Array.isArray(x)) throw new ValidationError(`${at} must be an object`, at);
  const o = x as Record<string, unknown>;
  const c = o['console'];
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new ValidationError(`${at}.console must be an object`, `${at}.console`);
  for (const f of ['id', 'name', 'status', 'availability_zone']) {
    if (o[f] !== undefined && typeof o[f] !== 'string') throw new ValidationError(`${at}.${f} must be a string`, `${at}.${f}`);
  }
  return {
    id: o['id'] as string, name: o['name'] as string,
    ...(o['status'] !== undefined ? { status: o['status'] as string } : {}),
    ...(o['availability_zone'] !== undefined ? { availabilityZone: o['availability_zone'] as string } : {}),
    console: consoleBody(c as Record<string, unknown>),
  };
}

/** A console target in API form (snake_case: tls_name, libvirt uri/domain) as the inventory's input. */
export function consoleBody(c: Record<string, unknown>): ConsoleTargetInput {
  const map: Record<string, keyof ConsoleTargetInput> = {
    kind: 'kind', host: 'host', port: 'port', auth: 'auth', password: 'password', qmp: 'qmp', uri: 'uri', domain: 'domain', tls: 'tls', tls_name: 'tlsName', serial: 'serial',
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) {
    const f = map[k];
    if (!f) throw new ValidationError(`console.${k} is not a console target field (${Object.keys(map).join(', ')})`, `console.${k}`);
    const want = f === 'port' ? 'number' : f === 'tls' ? 'boolean' : 'string';
    if (v !== null && typeof v !== want) throw new ValidationError(`console.${k} must be a ${want}`, `console.${k}`);
    out[f] = v;
  }
  return out as ConsoleTargetInput;
}
