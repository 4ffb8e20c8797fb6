/**
 * `serve --demo`: the API, the proxy and three built-in demo VNC servers in one process. The
 * first start creates a demo project, user, access key and servers (two ACTIVE, one behind a VNC
 * password, one SHUTOFF); later starts reuse them. Everything a newcomer needs is printed and
 * written to `<dataDir>/demo.json` (mode 0600).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from '../app.js';
import type { ListenAddress } from '../config/config.js';
import { consoleBaseUrl, listenerUrl } from '../config/config.js';
import { DemoVncServer } from '../demo/index.js';
import type { Logger } from '../log.js';
import { restrictFile } from '../secrets/master-key.js';
import type { Server, ServerStatus } from '../inventory/types.js';

export const DEMO_FILE = 'demo.json';

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
  /** Demo VNC server ports, kept so restarts do not move console targets (and revoke tokens). */
  backendPorts: Record<string, number>;
}

const DEMO_SERVERS: ReadonlyArray<{ name: string; status: ServerStatus; password?: string }> = [
  { name: 'demo-web-01', status: 'ACTIVE' },
  { name: 'demo-db-01', status: 'ACTIVE', password: 'demo-pw' },
  { name: 'demo-batch-01', status: 'SHUTOFF' },
];

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
    const user = await identity.createUser({ domain: 'demo', name: `demo-${randomBytes(3).toString('hex')}`, password });
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
  const backends: DemoVncServer[] = [];
  for (const entry of info.servers) {
    const server = await inventory.findServer(entry.id);
    if (!server) continue;
    const spec = DEMO_SERVERS.find((d) => d.name === entry.name);
    const vnc = new DemoVncServer({ name: server.name, ...(spec?.password ? { password: spec.password } : {}), logger: log.child({ component: 'demo-vnc', server: server.name }) });
    const port = await listenPreferring(vnc, info.backendPorts[entry.id]);
    backends.push(vnc);
    info.backendPorts[entry.id] = port;
    if (server.console.port !== port || server.console.host !== '127.0.0.1') {
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
      writeFileSync(path, JSON.stringify(demo, null, 2) + '\n', { mode: 0o600 });
      restrictFile(path);
      const first = await inventory.getServer(demo.servers[0]!.id);
      const { token } = await services.consoleTokens.issue(first);
      await services.auditor.record('issued', { projectId: first.projectId, serverId: first.id, tokenRef: (await import('../log.js')).tokenRef(token), detail: { credential: 'demo-start' } });
      const url = `${consoleBaseUrl(config, first.availabilityZone, proxy)}/vnc_auto.html?token=${token}&lang=EN&tLength=${config.consoleUrlTLength}`;
      return { info: demo, url, text: banner(demo, url, path) };
    },
  };
}

/** The text printed at start: credentials, a curl example, an SDK snippet, a console URL. */
export function banner(d: DemoInfo, url: string, path: string): string {
  const web = d.servers[0]!;
  const authBody = JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: d.user, password: d.password, domain: { name: d.domain } } } },
      scope: { project: { id: d.projectId } },
    },
  });
  const sdk = [
    `const core = require("@huaweicloud/huaweicloud-sdk-core"); const ecs = require("@huaweicloud/huaweicloud-sdk-ecs");`,
    `const client = ecs.EcsClient.newBuilder().withCredential(new core.BasicCredentials().withAk("${d.ak}").withSk("${d.sk}").withProjectId("${d.projectId}")).withEndpoint("${d.apiUrl}").withOptions({ customUserAgent: "ecs-console-demo" }).build();`,
    `client.showServerRemoteConsole(new ecs.ShowServerRemoteConsoleRequest().withServerId("${web.id}").withBody(new ecs.ShowServerRemoteConsoleRequestBody().withRemoteConsole(new ecs.GetServerRemoteConsoleOption().withProtocol("vnc").withType("novnc")))).then((r) => console.log(r.remote_console.url), (e) => { console.error(e.errorMsg || e); process.exit(1); });`,
  ].join(' ');
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
    `  Domain / user   ${d.domain} / ${d.user}`,
    `  Password        ${d.password}`,
    `  AK / SK         ${d.ak} / ${d.sk}`,
    '  Servers:',
    ...d.servers.map((s) => `    ${s.id}  ${s.name.padEnd(14)} ${s.status}`),
    '',
    '  A new console URL with curl (IAM token, then the Huawei API call):',
    `    TOKEN=$(curl -si -X POST ${d.apiUrl}/v3/auth/tokens -H 'Content-Type: application/json' -d '${authBody}' | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\\r')`,
    `    curl -s -X POST ${d.apiUrl}/v1/${d.projectId}/cloudservers/${web.id}/remote_console -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -d '{"remote_console":{"type":"novnc","protocol":"vnc"}}'`,
    '',
    '  The same with the official Huawei Cloud Node SDK (AK/SK), from this directory:',
    `    node -e '${sdk}'`,
    '',
    `  Or: npx ecs-console console-url --server ${web.id} --open`,
    '',
    `  All of this is in ${path} (mode 0600). Stop with Ctrl+C.`,
    '',
  ];
  return lines.join('\n');
}
