/**
 * A fleet on loopback, as deployed: two `ecs-console api` and two `ecs-console proxy` processes
 * sharing one PostgreSQL (a database the test creates and drops), then nginx in front of them with
 * the configuration from docs/deploy.md. Checks exactly-once consumption across proxies,
 * revocation across nodes within 1 s, a proxy killed without harming the other's sessions, a
 * database outage and recovery, and a full restart that loses no token and no audit record.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerId, BatchStopServersRequest, BatchStopServersRequestBody, BatchStopServersOption } from '@huaweicloud/huaweicloud-sdk-ecs';
import { DemoVncServer } from '../../src/demo/index.js';
import { CloseCode } from '../../src/proxy/close-codes.js';
import { runCli, startCli, type RunningServer } from '../helpers/cli.js';
import { closeOf, openConsole, openWs, wsUrlOf } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { adminQuery, createTestDatabase, terminateBackends, type TestDatabase } from '../helpers/postgres.js';
import { freePort, requireBinary, waitForPort } from '../helpers/real-vnc.js';
import { RfbTestClient } from '../helpers/rfb-test-client.js';
import { signedHttp } from '../helpers/signed-fetch.js';
import { tempDir } from '../helpers/stack.js';

const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';
let db: TestDatabase;
let nginxPort = 0;
let env: Record<string, string>;
const backends: DemoVncServer[] = [];
const serverIds: string[] = [];
let projectId = '';
let ak = '';
let sk = '';
const nodes: Record<string, RunningServer> = {};
let nginx: ChildProcess | null = null;
const clients: RfbTestClient[] = [];

function nodeEnv(nodeId: string): Record<string, string> {
  // Each node its own data directory: only PostgreSQL and the master key are shared.
  return { ...env, ECS_CONSOLE_NODE_ID: nodeId, ECS_CONSOLE_DATA_DIR: tempDir(`ecs-${nodeId}-`) };
}

async function startNode(name: 'api-1' | 'api-2' | 'proxy-1' | 'proxy-2'): Promise<RunningServer> {
  const role = name.startsWith('api') ? 'api' : 'proxy';
  const n = await startCli([role, role === 'api' ? '--api-listen' : '--proxy-listen', '127.0.0.1:0'], nodeEnv(name));
  nodes[name] = n;
  return n;
}

async function stopNode(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const n = nodes[name];
  if (!n) return;
  n.child.kill(signal);
  await n.exited;
  delete nodes[name];
}

const apiUrlOf = (name: string): string => nodes[name]!.apiUrl;
const proxyUrlOf = (name: string): string => nodes[name]!.proxyUrl;
/** The console URL's token, pointed at one proxy node directly. */
const atProxy = (consoleUrl: string, proxy: string): string => `${proxyUrlOf(proxy)}/vnc_auto.html?token=${new URL(consoleUrl).searchParams.get('token')}`;
const origin = (): string => `https://127.0.0.1:${nginxPort}`;

async function issue(api: string, serverId: string): Promise<string> {
  const r = await signedHttp('POST', `${apiUrlOf(api)}/v1/${projectId}/cloudservers/${serverId}/remote_console`, BODY, { ak, sk, projectId });
  assert.equal(r.status, 200, r.text);
  return r.json.remote_console.url as string;
}

before(async () => {
  requireBinary('/usr/sbin/nginx', 'nginx-light');
  requireBinary('/usr/bin/openssl', 'openssl');
  db = await createTestDatabase();
  nginxPort = await freePort();
  env = {
    ECS_CONSOLE_STORE: db.url,
    ECS_CONSOLE_MASTER_KEY: randomBytes(32).toString('base64'),
    ECS_CONSOLE_LOG_LEVEL: 'warn',
    ECS_CONSOLE_PUBLIC_URL: origin(),
    ECS_CONSOLE_TRUST_PROXY: 'true',
    ECS_CONSOLE_API_RATE_LIMIT_PER_CREDENTIAL: '0',
    ECS_CONSOLE_API_RATE_LIMIT_PER_ADDRESS: '0',
    ECS_CONSOLE_PROXY_MAX_SESSIONS_PER_SERVER: '500',
    ECS_CONSOLE_PROXY_MAX_SESSIONS_PER_PROJECT: '1000',
    ECS_CONSOLE_PROXY_DRAIN_SECONDS: '0',
  };
  const seedEnv = { ...env, ECS_CONSOLE_DATA_DIR: tempDir() };
  assert.equal((await runCli(['init'], seedEnv)).code, 0);
  projectId = JSON.parse((await runCli(['project', 'create', '--name', 'fleet', '--domain', 'acme', '--json'], seedEnv)).stdout).id;
  assert.equal((await runCli(['user', 'create', '--domain', 'acme', '--name', 'ops', '--password-stdin'], seedEnv, 'password-123\n')).code, 0);
  const key = JSON.parse((await runCli(['key', 'create', '--domain', 'acme', '--user', 'ops', '--project', projectId, '--json'], seedEnv)).stdout);
  ak = key.ak;
  sk = key.sk;
  for (let i = 0; i < 4; i++) {
    const vnc = new DemoVncServer({ name: `fleet-${i}`, width: 160, height: 100, maxClients: 200 });
    const { port } = await vnc.listen(0, '127.0.0.1');
    backends.push(vnc);
    const r = await runCli(['server', 'add', '--project', projectId, '--name', `vm-${i}`, '--host', '127.0.0.1', '--port', String(port), '--json'], seedEnv);
    assert.equal(r.code, 0, r.stderr);
    serverIds.push(JSON.parse(r.stdout).id);
  }
  await Promise.all([startNode('api-1'), startNode('api-2'), startNode('proxy-1'), startNode('proxy-2')]);
});

after(async () => {
  for (const c of clients) c.close();
  nginx?.kill('SIGTERM');
  await Promise.all(Object.keys(nodes).map((n) => stopNode(n)));
  await Promise.all(backends.map((b) => b.close()));
  await adminQuery(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`).catch(() => undefined);
  await db?.drop();
});

const sessionsOn = new Map<string, Array<{ client: RfbTestClient; serverIndex: number; closed: Promise<{ code: number }> }>>();

test('100 tokens from both API nodes, each connected twice at once across both proxies: exactly 100 sessions', async () => {
  const urls: Array<{ url: string; serverIndex: number }> = [];
  for (let i = 0; i < 100; i++) urls.push({ url: await issue(i % 2 ? 'api-2' : 'api-1', serverIds[i % 4]!), serverIndex: i % 4 });
  const attempts = urls.flatMap(({ url, serverIndex }) => (['proxy-1', 'proxy-2'] as const).map(async (proxy) => {
    const r = await openWs(wsUrlOf(atProxy(url, proxy)), { origin: origin() });
    if (!r.ok) return { proxy, ok: false as const, status: r.status };
    const closed = closeOf(r.ws);
    const client = await RfbTestClient.connect(r.transport);
    clients.push(client);
    const list = sessionsOn.get(proxy) ?? [];
    list.push({ client, serverIndex, closed });
    sessionsOn.set(proxy, list);
    return { proxy, ok: true as const, status: 101 };
  }));
  const results = await Promise.all(attempts);
  assert.equal(results.filter((r) => r.ok).length, 100);
  assert.ok(results.filter((r) => !r.ok).every((r) => r.status === 401));
  // Both proxies took part.
  assert.ok((sessionsOn.get('proxy-1')?.length ?? 0) > 0 && (sessionsOn.get('proxy-2')?.length ?? 0) > 0);
  const listed = JSON.parse((await runCli(['sessions', 'list', '--json'], { ...env, ECS_CONSOLE_DATA_DIR: tempDir() })).stdout) as Array<{ node: string }>;
  assert.equal(listed.length, 100);
  assert.deepEqual([...new Set(listed.map((l) => l.node))].sort(), ['proxy-1', 'proxy-2']);
});

test('a server stopped through one API node (official SDK) loses its sessions on both proxies within 1 s', async () => {
  const victim = 0;
  const doomed = [...sessionsOn.values()].flat().filter((x) => x.serverIndex === victim);
  assert.ok(doomed.length >= 20);
  const client = sdkClient(apiUrlOf('api-1'), ak, sk, projectId);
  const t0 = Date.now();
  const r = await client.batchStopServers(new BatchStopServersRequest().withBody(new BatchStopServersRequestBody().withOsStop(
    new BatchStopServersOption().withServers([new ServerId(serverIds[victim]!)]).withType('SOFT'))));
  assert.match((r as unknown as { job_id: string }).job_id, /^[0-9a-f-]{36}$/);
  const codes = await Promise.all(doomed.map((d) => d.closed));
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  assert.ok(codes.every((c) => c.code === CloseCode.Revoked));
  for (const list of sessionsOn.values()) for (let i = list.length - 1; i >= 0; i--) if (list[i]!.serverIndex === victim) list.splice(i, 1);
});

test('SIGKILL of one proxy leaves the other\'s sessions running', async () => {
  await stopNode('proxy-2', 'SIGKILL');
  const survivors = sessionsOn.get('proxy-1') ?? [];
  assert.ok(survivors.length > 0);
  await Promise.all(survivors.slice(0, 10).map(async ({ client }) => {
    const n = client.updateCount;
    client.requestUpdate(false);
    await client.waitUntil(() => client.updateCount > n, 5000);
  }));
  sessionsOn.delete('proxy-2');
  await startNode('proxy-2');
});

test('PostgreSQL unreachable: API 500 Common.0001 quickly, proxy 503, live sessions go on; both recover', async () => {
  const keep = (sessionsOn.get('proxy-1') ?? [])[0]!;
  const pending = await issue('api-1', serverIds[1]!);
  await adminQuery(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
  await terminateBackends(db.name);
  try {
    const t0 = Date.now();
    const r = await signedHttp('POST', `${apiUrlOf('api-2')}/v1/${projectId}/cloudservers/${serverIds[1]}/remote_console`, BODY, { ak, sk, projectId });
    assert.equal(r.status, 500);
    assert.equal(r.json.error.code, 'Common.0001');
    assert.ok(Date.now() - t0 < 5000, `answered in ${Date.now() - t0} ms`);
    const ws = await openWs(wsUrlOf(atProxy(pending, 'proxy-1')), { origin: origin() });
    assert.ok(!ws.ok && ws.status === 503, JSON.stringify(ws.ok ? 'accepted' : ws));
    assert.equal((await fetch(`${proxyUrlOf('proxy-1')}/readyz`)).status, 503);
    const n = keep.client.updateCount;
    keep.client.requestUpdate(false);
    await keep.client.waitUntil(() => keep.client.updateCount > n, 5000);
  } finally {
    await adminQuery(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
  }
  const deadline = Date.now() + 15_000;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await signedHttp('POST', `${apiUrlOf('api-2')}/v1/${projectId}/cloudservers/${serverIds[1]}/remote_console`, BODY, { ak, sk, projectId })).status;
    if (status === 200) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(status, 200, 'the API recovered by itself');
  const c = await openConsole(atProxy(pending, 'proxy-1'), { origin: origin() });
  c.ws.close();
});

test('restarting every process loses no unexpired unused token and no audit record', async () => {
  const unused: string[] = [];
  for (let i = 0; i < 6; i++) unused.push(await issue(i % 2 ? 'api-1' : 'api-2', serverIds[2]!));
  for (const c of clients) c.close();
  clients.length = 0;
  await new Promise((r) => setTimeout(r, 300));
  // Audit rows live in the test database (the admin connection is to another one).
  const { default: pg } = await import('pg');
  const q = async (sql: string): Promise<{ n: number; m: number }> => {
    const cl = new pg.Client({ connectionString: db.url });
    await cl.connect();
    try {
      const r = await cl.query(sql);
      return { n: Number(r.rows[0].n), m: Number(r.rows[0].m) };
    } finally {
      await cl.end();
    }
  };
  const audit0 = await q('SELECT count(*) AS n, max(id) AS m FROM audit_events');
  await Promise.all(Object.keys(nodes).map((n) => stopNode(n)));
  await Promise.all([startNode('api-1'), startNode('api-2'), startNode('proxy-1'), startNode('proxy-2')]);
  const audit1 = await q(`SELECT count(*) AS n, max(id) AS m FROM audit_events WHERE id <= ${audit0.m}`);
  assert.equal(audit1.n, audit0.n, 'every audit record from before the restart is still there');
  for (const [i, u] of unused.entries()) {
    const c = await openConsole(atProxy(u, i % 2 ? 'proxy-1' : 'proxy-2'), { origin: origin() });
    c.ws.close();
  }
});

test('nginx with the configuration from docs/deploy.md serves a full console session over TLS', async () => {
  const doc = readFileSync(new URL('../../../docs/deploy.md', import.meta.url), 'utf8');
  const block = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block, 'docs/deploy.md has an nginx block');
  const prefix = tempDir('ecs-nginx-');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, d));
  const cert = join(prefix, 'cert.pem');
  const key = join(prefix, 'key.pem');
  execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const hostPort = (u: string): string => new URL(u).host;
  const conf = block
    .replaceAll('__PREFIX__', prefix).replaceAll('__LISTEN__', `127.0.0.1:${nginxPort}`)
    .replaceAll('__CERT__', cert).replaceAll('__KEY__', key)
    .replaceAll('__API_1__', hostPort(apiUrlOf('api-1'))).replaceAll('__API_2__', hostPort(apiUrlOf('api-2')))
    .replaceAll('__PROXY_1__', hostPort(proxyUrlOf('proxy-1'))).replaceAll('__PROXY_2__', hostPort(proxyUrlOf('proxy-2')));
  assert.doesNotMatch(conf, /__[A-Z0-9_]+__/, 'every placeholder substituted');
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  nginx = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErr = '';
  nginx.stderr?.on('data', (d: Buffer) => (nginxErr += d.toString()));
  await waitForPort(nginxPort).catch((e: Error) => assert.fail(`nginx did not start: ${e.message}\n${nginxErr}`));
  const ca = readFileSync(cert);
  // The official SDK through nginx (Host and body reach the API node unchanged: the signature holds).
  const resp = await remoteConsole(sdkClient(origin(), ak, sk, projectId, ca), serverIds[3]!);
  assert.match(resp.remote_console.url, new RegExp(`^https://127\\.0\\.0\\.1:${nginxPort}/vnc_auto\\.html\\?token=`));
  // Operations endpoints are not published through nginx (the nodes still answer them directly).
  const { request } = await import('node:https');
  const status = (path: string): Promise<number> => new Promise((resolve, reject) => {
    request(`${origin()}${path}`, { ca }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
  });
  assert.equal(await status('/metrics'), 404);
  assert.equal(await status('/readyz'), 404);
  assert.equal((await fetch(`${proxyUrlOf('proxy-1')}/metrics`)).status, 200);
  // The console WebSocket through nginx (TLS, upgrade, Origin passed through).
  const c = await openConsole(resp.remote_console.url);
  assert.equal(c.client.name, 'vm-3');
  await c.client.waitUntil(() => c.client.updateCount > 0);
  c.client.typeText('hi');
  const n = c.client.updateCount;
  await c.client.waitUntil(() => c.client.updateCount > n);
  c.ws.close();
});
