/**
 * The Nova-compatible API over HTTP: discovery, microversion headers and errors, the Keystone
 * catalog, servers list/detail/show, consoles by action and by remote-consoles, console output,
 * and os-console-auth-tokens for domain administrators only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer } from 'node:net';
import { http, type Reply } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';
import type { Server } from '../../../src/inventory/types.js';

let stack: Stack;
let s: Seed;
let tty: Server;
let serialPort: NetServer;
let token: string;
let adminToken: string;

const tokenFor = async (user: string, password: string, projectId: string): Promise<Reply> => {
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: s.domain } } } }, scope: { project: { id: projectId } } } });
  return http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, body);
};

before(async () => {
  serialPort = createServer((sock) => {
    sock.write('Linux version 6.1 (stand-in)\r\n');
    for (let i = 1; i <= 30; i++) sock.write(`boot line ${i}\r\n`);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => serialPort.listen(0, '127.0.0.1', () => r()));
  stack = await startStack();
  s = await seed(stack.app);
  tty = await stack.app.services.inventory.addServer({
    projectId: s.projectId, name: 'tty-01', console: { host: '127.0.0.1', port: 5999, serial: `127.0.0.1:${(serialPort.address() as { port: number }).port}` },
  });
  token = String((await tokenFor(s.user, s.password, s.projectId)).headers['x-subject-token']);
  await stack.app.services.identity.createUser({ domain: s.domain, name: 'root-admin', password: 'Adm1n-passw0rd', admin: true });
  adminToken = String((await tokenFor('root-admin', 'Adm1n-passw0rd', s.projectId)).headers['x-subject-token']);
});
after(async () => {
  await stack.stop();
  await new Promise<void>((r) => serialPort.close(() => r()));
});

const nova = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, as = token): Promise<Reply> =>
  http(method, `${stack.apiUrl}/v2.1/${path}`, { 'x-auth-token': as, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body === undefined ? '' : JSON.stringify(body));

test('the Keystone token answer carries a catalog: identity and compute, per interface, in the project\'s region', async () => {
  const r = await tokenFor(s.user, s.password, s.projectId);
  assert.equal(r.status, 201);
  const catalog = r.json.token.catalog as Array<{ type: string; endpoints: Array<{ interface: string; region: string; url: string }> }>;
  const compute = catalog.find((c) => c.type === 'compute')!;
  const identity = catalog.find((c) => c.type === 'identity')!;
  assert.deepEqual(compute.endpoints.map((e) => e.interface).sort(), ['admin', 'internal', 'public']);
  assert.deepEqual(new Set(compute.endpoints.map((e) => e.url)), new Set([`${stack.apiUrl}/v2.1/${s.projectId}`]));
  assert.equal(compute.endpoints[0]!.region, 'cn-north-4');
  assert.equal(identity.endpoints[0]!.url, `${stack.apiUrl}/v3`);
  const v3 = await http('GET', `${stack.apiUrl}/v3`);
  assert.equal(v3.json.version.id, 'v3.14');
});

test('version discovery at /, /v2.1/ and the catalog URL; microversion headers echoed; bad ones refused in Nova\'s shape', async () => {
  const root = await http('GET', `${stack.apiUrl}/`);
  assert.equal(root.json.versions[0].id, 'v2.1');
  assert.equal(root.json.versions[0].version, '2.60');
  assert.equal(root.json.versions[0].min_version, '2.1');
  for (const p of ['/v2.1/', '/v2.1', `/v2.1/${s.projectId}`]) assert.equal((await http('GET', `${stack.apiUrl}${p}`)).json.version.status, 'CURRENT', p);
  const d = await nova('GET', `${s.projectId}/servers`, undefined, { 'OpenStack-API-Version': 'compute 2.47' });
  assert.equal(d.headers['openstack-api-version'], 'compute 2.47');
  assert.equal(d.headers['x-openstack-nova-api-version'], '2.47');
  const legacy = await nova('GET', `${s.projectId}/servers`, undefined, { 'X-OpenStack-Nova-API-Version': '2.6' });
  assert.equal(legacy.headers['openstack-api-version'], 'compute 2.6');
  assert.equal((await nova('GET', `${s.projectId}/servers`)).headers['x-openstack-nova-api-version'], '2.1');
  assert.equal((await nova('GET', `${s.projectId}/servers`, undefined, { 'OpenStack-API-Version': 'compute latest' })).headers['x-openstack-nova-api-version'], '2.60');
  const high = await nova('GET', `${s.projectId}/servers`, undefined, { 'OpenStack-API-Version': 'compute 2.99' });
  assert.equal(high.status, 406);
  assert.match(high.json.computeFault.message, /Minimum is 2\.1 and maximum is 2\.60/);
  const bad = await nova('GET', `${s.projectId}/servers`, undefined, { 'X-OpenStack-Nova-API-Version': 'two' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.badRequest.code, 400);
});

test('servers: list, detail (flavor by microversion), show; another project\'s server and an unknown one are itemNotFound; the URL\'s project must be the token\'s', async () => {
  const list = await nova('GET', `${s.projectId}/servers`);
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.servers.map((x: { name: string }) => x.name).sort(), ['db-01', 'tty-01', 'web-01']);
  const detail = await nova('GET', `${s.projectId}/servers/detail?name=tty-01`);
  assert.equal(detail.json.servers.length, 1);
  const srv = detail.json.servers[0];
  assert.deepEqual([srv.id, srv.status, srv.tenant_id, srv['OS-EXT-STS:vm_state'], srv.image, srv.flavor.id], [tty.id, 'ACTIVE', s.projectId, 'active', '', 'console']);
  const v247 = await nova('GET', `${s.projectId}/servers/${tty.id}`, undefined, { 'OpenStack-API-Version': 'compute 2.47' });
  assert.equal(v247.json.server.flavor.original_name, 'console');
  assert.deepEqual(v247.json.server.tags, []);
  const paged = await nova('GET', `${s.projectId}/servers?limit=2`);
  assert.equal(paged.json.servers.length, 2);
  assert.match(paged.json.servers_links[0].href, /marker=/);
  const rest = await nova('GET', `${s.projectId}/servers?limit=2&marker=${paged.json.servers[1].id}`);
  assert.equal(rest.json.servers.length, 1);

  const foreign = await nova('GET', `${s.projectId}/servers/${s.foreign.id}`);
  assert.equal(foreign.status, 404);
  assert.deepEqual(foreign.json, { itemNotFound: { code: 404, message: `Instance ${s.foreign.id} could not be found.` } });
  assert.equal((await nova('GET', `${s.projectId}/servers/nope`)).status, 404);
  const other = await nova('GET', `${s.otherProjectId}/servers`);
  assert.equal(other.status, 400);
  assert.match(other.json.badRequest.message, /doesn't match Context's project_id/);
  const anon = await http('GET', `${stack.apiUrl}/v2.1/${s.projectId}/servers`);
  assert.equal(anon.status, 401);
  assert.equal((await nova('GET', `${s.projectId}/no-such-thing`)).json.itemNotFound.code, 404);
});

test('consoles: os-getVNCConsole and remote-consoles (2.6+) give noVNC\'s URL; serial gives the serial WebSocket; other types keep Nova\'s errors', async () => {
  const vnc = await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getVNCConsole': { type: 'novnc' } });
  assert.equal(vnc.status, 200, vnc.text);
  assert.equal(vnc.json.console.type, 'novnc');
  assert.match(vnc.json.console.url, /\/vnc_auto\.html\?token=/);
  const serial = await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getSerialConsole': { type: 'serial' } });
  assert.match(serial.json.console.url, /^ws:\/\/127\.0\.0\.1:\d+\/serial-websocket\?token=[0-9a-f-]{36}$/);
  const rc = await nova('POST', `${s.projectId}/servers/${tty.id}/remote-consoles`, { remote_console: { protocol: 'serial', type: 'serial' } }, { 'OpenStack-API-Version': 'compute 2.6' });
  assert.equal(rc.status, 200, rc.text);
  assert.deepEqual([rc.json.remote_console.protocol, rc.json.remote_console.type], ['serial', 'serial']);
  const rcv = await nova('POST', `${s.projectId}/servers/${tty.id}/remote-consoles`, { remote_console: { protocol: 'vnc', type: 'novnc' } }, { 'OpenStack-API-Version': 'compute 2.8' });
  assert.match(rcv.json.remote_console.url, /\/vnc_auto\.html\?token=/);
  assert.equal((await nova('POST', `${s.projectId}/servers/${tty.id}/remote-consoles`, { remote_console: { protocol: 'vnc', type: 'novnc' } })).status, 404, 'not before 2.6');
  const spice = await nova('POST', `${s.projectId}/servers/${tty.id}/remote-consoles`, { remote_console: { protocol: 'spice', type: 'spice-html5' } }, { 'OpenStack-API-Version': 'compute 2.6' });
  assert.deepEqual(spice.json, { badRequest: { code: 400, message: 'Unavailable console type spice-html5.' } });
  const mixed = await nova('POST', `${s.projectId}/servers/${tty.id}/remote-consoles`, { remote_console: { protocol: 'vnc', type: 'serial' } }, { 'OpenStack-API-Version': 'compute 2.6' });
  assert.equal(mixed.status, 400);
  const noSerial = await nova('POST', `${s.projectId}/servers/${s.active.id}/action`, { 'os-getSerialConsole': { type: 'serial' } });
  assert.deepEqual(noSerial.json, { badRequest: { code: 400, message: 'Unavailable console type serial.' } });
  const stopped = await nova('POST', `${s.projectId}/servers/${s.shutoff.id}/action`, { 'os-getVNCConsole': { type: 'novnc' } });
  assert.equal(stopped.status, 409);
  assert.match(stopped.json.conflictingRequest.message, /while it is in vm_state stopped/);
  assert.equal((await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-reboot': {} })).json.badRequest.message, 'There is no such action: os-reboot');
  assert.equal((await nova('POST', `${s.projectId}/servers/${s.foreign.id}/action`, { 'os-getVNCConsole': { type: 'novnc' } })).status, 404);
});

test('os-getConsoleOutput: all of it, or the last N lines', async () => {
  let all: Reply;
  const deadline = Date.now() + 5000;
  do all = await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getConsoleOutput': {} });
  while (!/boot line 30/.test(all.json.output ?? '') && Date.now() < deadline);
  assert.match(all.json.output, /^Linux version 6\.1 \(stand-in\)\r\nboot line 1\r\n/);
  const last = await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getConsoleOutput': { length: 3 } });
  assert.equal(last.json.output, 'boot line 28\r\nboot line 29\r\nboot line 30\r\n');
  assert.equal((await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getConsoleOutput': { length: '2' } })).json.output, 'boot line 29\r\nboot line 30\r\n');
  assert.equal((await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getConsoleOutput': { length: -1 } })).json.output, all.json.output);
  assert.equal((await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getConsoleOutput': { length: -5 } })).status, 400);
  assert.equal((await nova('POST', `${s.projectId}/servers/${s.active.id}/action`, { 'os-getConsoleOutput': {} })).status, 409);
});

test('os-console-auth-tokens (2.31+): administrators see a valid token\'s console; others get 403; unknown or used tokens 404', async () => {
  const u = (await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getVNCConsole': { type: 'novnc' } })).json.console.url as string;
  const t = new URL(u).searchParams.get('token')!;
  const h = { 'OpenStack-API-Version': 'compute 2.31' };
  const r = await nova('GET', `${s.projectId}/os-console-auth-tokens/${t}`, undefined, h, adminToken);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { console: { instance_uuid: tty.id, host: '127.0.0.1', port: 5999, internal_access_path: null } });
  const forbidden = await nova('GET', `${s.projectId}/os-console-auth-tokens/${t}`, undefined, h);
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.json.forbidden.code, 403);
  assert.equal((await nova('GET', `${s.projectId}/os-console-auth-tokens/${t}`, undefined, {}, adminToken)).status, 400, 'before 2.31');
  assert.equal((await nova('GET', `${s.projectId}/os-console-auth-tokens/00000000-0000-4000-8000-000000000000`, undefined, h, adminToken)).status, 404);
  const serialUrl = (await nova('POST', `${s.projectId}/servers/${tty.id}/action`, { 'os-getSerialConsole': { type: 'serial' } })).json.console.url as string;
  const st = await nova('GET', `${s.projectId}/os-console-auth-tokens/${new URL(serialUrl).searchParams.get('token')}`, undefined, h, adminToken);
  assert.equal(st.json.console.port, (serialPort.address() as { port: number }).port);
});
