/**
 * `serve --demo`: the API, the proxy and three built-in demo VNC servers in one process. The
 * first start creates a demo project, user, access key and servers (two ACTIVE, one behind a VNC
 * password, one SHUTOFF); later starts reuse them. Everything a newcomer needs is printed and
 * written to `<dataDir>/demo.json` (mode 0600).
 *
 * The demo's objects are kept apart from a real service's: its data directory is `./demo-data`
 * unless one is configured, a real `serve`/`api`/`proxy` refuses a store that holds them (their
 * credentials were printed), and `--demo` refuses a store that holds anything else.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App, Services } from '../app.js';
import type { Config, ListenAddress } from '../config/config.js';
import { ConflictError, ValidationError } from '../errors.js';
import { consoleBaseUrl, listenerUrl } from '../config/config.js';
import { DemoVncServer } from '../demo/index.js';
import type { Logger } from '../log.js';
import { restrictFile } from '../secrets/master-key.js';
import type { Server, ServerStatus } from '../inventory/types.js';

export const DEMO_FILE = 'demo.json';

/** The demo's data directory when none is configured: apart from a real service's `./data`. */
export const DEMO_DATA_DIR = './demo-data';

/** What demo.json holds. */
export interface DemoInfo {
  apiUrl: string;
  consoleBaseUrl: string;
  projectId: string;
  domain: string;
  user: string;
  password: string;
  ak: string;
  sk: string;
  servers: Array<{ id: string; name: string; status: ServerStatus }>;
  /** The demo domain's id (the IAM SDK's GlobalCredentials sign with it). */
  domainId?: string;
  /** Copy-paste examples, as printed: the official SDKs against this demo. */
  examples?: { ecsRemoteConsole: string; iamListMyAccessKeys: string };
  /** The demo project's name (the operator page signs in to a project by name or id). */
  projectName?: string;
  /** Demo VNC server ports, kept so restarts do not move console targets (and revoke tokens). */
  backendPorts: Record<string, number>;
}

const DEMO_SERVERS: ReadonlyArray<{ name: string; status: ServerStatus; password?: string }> = [
  { name: 'demo-web-01', status: 'ACTIVE' },
  { name: 'demo-db-01', status: 'ACTIVE', password: 'demo-pw' },
  { name: 'demo-batch-01', status: 'SHUTOFF' },
];

/** The demo record of a data directory, or null. */
export function readDemoFile(dataDir: string): DemoInfo | null {
  return readDemo(join(dataDir, DEMO_FILE));
}

function readDemo(path: string): DemoInfo | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DemoInfo;
  } catch {
    return null;
  }
}

async function listenPreferring(vnc: DemoVncServer, port: number | undefined): Promise<number> {
  if (port) {
    try {
      return (await vnc.listen(port, '127.0.0.1')).port;
    } catch {
      /* taken: a new port below */
    }
  }
  return (await vnc.listen(0, '127.0.0.1')).port;
}

/** The demo runs on its own SQLite store: refused before anything is opened. */
export function checkDemoConfig(config: Config): void {
  if (!config.store.startsWith('sqlite:')) {
    throw new ValidationError(`--demo runs on its own SQLite store in its data directory; drop the store option (set by ${config.sources['store'] ?? 'the configuration'}) to run the demo`);
  }
}

/**
 * Keeps the demo and a real service on separate stores. A real service (`demo` false) refuses a
 * store holding the demo's objects: the credentials the demo printed would work against it. The
 * demo refuses a store holding projects that are not its own: its credentials would land in a
 * real store.
 */
export async function checkDemoSeparation(services: Pick<Services, 'config' | 'stores'>, demo: boolean): Promise<void> {
  const { config } = services;
  const identity = services.stores.identity;
  const info = readDemoFile(config.dataDir);
  const demoProject = info ? await identity.getProject(info.projectId) : null;
  if (!demo) {
    if (!demoProject) return;
    throw new ConflictError(
      `the store ${storeName(config)} holds the demo's objects (${join(config.dataDir, DEMO_FILE)}: project ${info!.projectId}, access key ${info!.ak}, ` +
      `user ${info!.domain}/${info!.user}), whose credentials were printed: a real service must not accept them. Run it on another data directory ` +
      `(--data-dir or ECS_CONSOLE_DATA_DIR; the demo keeps to ${DEMO_DATA_DIR} unless told otherwise), or delete ${config.dataDir} to drop the demo`,
    );
  }
  if (demoProject) return;
  const projects = await identity.listProjects();
  if (projects.length > 0) {
    throw new ConflictError(
      `--demo would add its printed credentials to the store ${storeName(config)}, which holds ${projects.length} project(s) of a real service: ` +
      `run the demo on its own data directory (without --data-dir it uses ${DEMO_DATA_DIR})`,
    );
  }
}

const storeName = (config: Config): string => config.store.startsWith('sqlite:') ? config.store : 'configured by --store';

export interface RunningDemo {
  info: DemoInfo;
  backends: DemoVncServer[];
  close(): Promise<void>;
}

/**
 * Creates (first start) or finds the demo objects, starts their VNC servers and points the
 * inventory at them. Call before app.start(); call `publish()` after it with the addresses.
 */
export async function prepareDemo(app: App, log: Logger): Promise<{ finish(api: ListenAddress, proxy: ListenAddress): Promise<{ info: DemoInfo; url: string; text: string }>; close(): Promise<void> }> {
  const { services } = app;
  const { config, identity, inventory } = services;
  const path = join(config.dataDir, DEMO_FILE);
  let info = readDemo(path);
  const project = info ? await identity.getProject(info.projectId).catch(() => null) : null;
  if (!info || !project) {
    const p = await identity.createProject({ name: `demo-${randomBytes(3).toString('hex')}`, domain: 'demo' });
    const password = `Demo-${randomBytes(6).toString('base64url')}`;
    // A domain administrator of the demo's own domain: it can use the operator page (/operator/).
    const user = await identity.createUser({ domain: 'demo', name: `demo-${randomBytes(3).toString('hex')}`, password, admin: true });
    const key = await identity.createAccessKey({ userId: user.id, projectId: p.id });
    const servers: Server[] = [];
    for (const d of DEMO_SERVERS) {
      servers.push(await inventory.addServer({
        projectId: p.id, name: d.name, status: d.status,
        // Placeholder target; the real port is set below once the demo VNC server listens.
        console: { host: '127.0.0.1', port: 5900, auth: d.password ? 'vnc-password' : 'none', password: d.password ?? null },
      }));
    }
    info = {
      apiUrl: '', consoleBaseUrl: '', projectId: p.id, domain: 'demo', user: user.name, password, ak: key.ak, sk: key.sk,
      servers: servers.map((s) => ({ id: s.id, name: s.name, status: s.status })), backendPorts: {},
    };
    log.info({ projectId: p.id }, 'demo objects created');
  }
  // A demo made before its user was an administrator becomes one (the operator page needs it).
  const demoUser = await identity.findUser(info.domain, info.user).catch(() => null);
  if (demoUser && demoUser.admin !== true) await services.stores.identity.updateUser(demoUser.id, { admin: true });
  const backends: DemoVncServer[] = [];
  for (const entry of info.servers) {
    const server = await inventory.findServer(entry.id);
    if (!server) continue;
    const spec = DEMO_SERVERS.find((d) => d.name === entry.name);
    const vnc = new DemoVncServer({ name: server.name, ...(spec?.password ? { password: spec.password } : {}), logger: log.child({ component: 'demo-vnc', server: server.name }) });
    const port = await listenPreferring(vnc, info.backendPorts[entry.id]);
    backends.push(vnc);
    info.backendPorts[entry.id] = port;
    if (server.console.kind !== 'static' || server.console.port !== port || server.console.host !== '127.0.0.1') {
      await inventory.setConsole(server.id, { host: '127.0.0.1', port, auth: spec?.password ? 'vnc-password' : 'none', password: spec?.password ?? null });
    }
    entry.status = server.status;
  }
  const demo = info;
  const close = async (): Promise<void> => {
    await Promise.all(backends.map((b) => b.close()));
  };
  return {
    close,
    async finish(api, proxy) {
      demo.apiUrl = listenerUrl(config, 'api', api);
      demo.consoleBaseUrl = consoleBaseUrl(config, 'az1', proxy);
      demo.domainId = (await identity.findUser(demo.domain, demo.user)).domainId;
      demo.projectName = (await identity.getProject(demo.projectId)).name;
      demo.examples = snippets(demo);
      writeFileSync(path, JSON.stringify(demo, null, 2) + '\n', { mode: 0o600 });
      restrictFile(path);
      const first = await inventory.getServer(demo.servers[0]!.id);
      const { token } = await services.consoleTokens.issue(first);
      await services.auditor.record('issued', { projectId: first.projectId, serverId: first.id, tokenRef: (await import('../log.js')).tokenRef(token), detail: { credential: 'demo-start' } });
      const url = `${consoleBaseUrl(config, first.availabilityZone, proxy)}/vnc_auto.html?token=${token}&lang=EN&tLength=${config.consoleUrlTLength}`;
      return { info: demo, url, text: banner(demo, url, path, config.dataDir) };
    },
  };
}

/** The official SDKs against the demo, as `node -e` code: a console URL (ECS), my access keys (IAM). */
function snippets(d: DemoInfo): { ecsRemoteConsole: string; iamListMyAccessKeys: string } {
  const web = d.servers[0]!;
  const ecsRemoteConsole = [
    `const core = require("@huaweicloud/huaweicloud-sdk-core"); const ecs = require("@huaweicloud/huaweicloud-sdk-ecs");`,
    `const client = ecs.EcsClient.newBuilder().withCredential(new core.BasicCredentials().withAk("${d.ak}").withSk("${d.sk}").withProjectId("${d.projectId}")).withEndpoint("${d.apiUrl}").withOptions({ customUserAgent: "ecs-console-demo" }).build();`,
    `client.showServerRemoteConsole(new ecs.ShowServerRemoteConsoleRequest().withServerId("${web.id}").withBody(new ecs.ShowServerRemoteConsoleRequestBody().withRemoteConsole(new ecs.GetServerRemoteConsoleOption().withProtocol("vnc").withType("novnc")))).then((r) => console.log(r.remote_console.url), (e) => { console.error(e.errorMsg || e); process.exit(1); });`,
  ].join(' ');
  // The IAM SDK's main module also loads its v5 API, which needs a file the package lacks: v3 directly.
  const iamListMyAccessKeys = [
    `const core = require("@huaweicloud/huaweicloud-sdk-core"); const iam = require("@huaweicloud/huaweicloud-sdk-iam/v3/public-api");`,
    `const client = iam.IamClient.newBuilder().withCredential(new core.GlobalCredentials().withAk("${d.ak}").withSk("${d.sk}").withDomainId("${d.domainId ?? ''}")).withEndpoint("${d.apiUrl}").withOptions({ customUserAgent: "ecs-console-demo" }).build();`,
    `client.listPermanentAccessKeys(new iam.ListPermanentAccessKeysRequest()).then((r) => console.log(JSON.stringify(r.credentials)), (e) => { console.error(e.errorMsg || e); process.exit(1); });`,
  ].join(' ');
  return { ecsRemoteConsole, iamListMyAccessKeys };
}

/** The text printed at start: credentials, a curl example, SDK snippets (ECS, IAM), a console URL. */
export function banner(d: DemoInfo, url: string, path: string, dataDir: string): string {
  const web = d.servers[0]!;
  const authBody = JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: d.user, password: d.password, domain: { name: d.domain } } } },
      scope: { project: { id: d.projectId } },
    },
  });
  const ex = d.examples ?? snippets(d);
  const lines = [
    '',
    'ecs-console demo is running.',
    '',
    `  Open this console now (one use, valid ${''}10 minutes):`,
    `    ${url}`,
    '',
    `  API             ${d.apiUrl}`,
    `  Console proxy   ${d.consoleBaseUrl}`,
    `  Project id      ${d.projectId}`,
    `  Domain / user   ${d.domain} / ${d.user}${d.domainId ? `  (domain id ${d.domainId})` : ''}`,
    `  Password        ${d.password}`,
    `  AK / SK         ${d.ak} / ${d.sk}`,
    `  Operator page   ${d.apiUrl}/operator/  (account ${d.domain}, user ${d.user}, project ${d.projectName ?? d.projectId})`,
    '  Servers:',
    ...d.servers.map((s) => `    ${s.id}  ${s.name.padEnd(14)} ${s.status}`),
    '',
    '  A new console URL with curl (IAM token, then the Huawei API call):',
    `    TOKEN=$(curl -si -X POST ${d.apiUrl}/v3/auth/tokens -H 'Content-Type: application/json' -d '${authBody}' | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\\r')`,
    `    curl -s -X POST ${d.apiUrl}/v1/${d.projectId}/cloudservers/${web.id}/remote_console -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -d '{"remote_console":{"type":"novnc","protocol":"vnc"}}'`,
    '',
    '  The same with the official Huawei Cloud Node SDK (AK/SK), from this directory:',
    `    node -e '${ex.ecsRemoteConsole}'`,
    '',
    '  My access keys with the official IAM SDK (GlobalCredentials: AK/SK and the domain id):',
    `    node -e '${ex.iamListMyAccessKeys}'`,
    '',
    `  Or: npx ecs-console console-url --server ${web.id} --data-dir ${dataDir} --open`,
    '',
    `  All of this is in ${path} (mode 0600). Stop with Ctrl+C.`,
    `  The demo keeps its own store and master key in ${dataDir}: a real \`ecs-console serve\``,
    `  uses ./data (or --data-dir) and refuses a data directory that holds the demo.`,
    '',
  ];
  return lines.join('\n');
}
