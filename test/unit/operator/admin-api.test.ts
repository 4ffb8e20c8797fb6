/**
 * The admin API driven with a plain HTTP client (fetch) and an IAM token a domain administrator
 * gets from /v3/auth/tokens: every operation, the refusals (no credential, not an administrator,
 * another domain's project), bulk sync of 5,000 servers twice (the second changes nothing,
 * revokes nothing) and a dry run, sessions listed and ended with a reason, audit search and export.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { openConsole } from '../../helpers/console-client.js';
import { fetchJson, iamTokenByPassword, type FetchReply } from '../../helpers/fetch-json.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let port = 0;
let stack: Stack;
let s: Seed;
let adminToken = '';
let userToken = '';

const iamToken = (domain: string, name: string, password: string, projectId: string): Promise<string> => iamTokenByPassword(stack.apiUrl, domain, name, password, projectId);

before(async () => {
  vnc = new DemoVncServer({ name: 'admin', width: 160, height: 100 });
  ({ port } = await vnc.listen(0, '127.0.0.1'));
  stack = await startStack();
  s = await seed(stack.app, { host: '127.0.0.1', port });
  await stack.app.services.identity.createUser({ domain: s.domain, name: 'ops', password: 'Adm1n-passw0rd', admin: true });
  adminToken = await iamToken(s.domain, 'ops', 'Adm1n-passw0rd', s.projectId);
  userToken = await iamToken(s.domain, s.user, s.password, s.projectId);
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

const call = (method: string, path: string, body?: unknown, token = adminToken): Promise<FetchReply> => fetchJson(stack.apiUrl, token, method, path, body);

test('administrators only: no credential 401, a user who is not an administrator 403, in Huawei IAM\'s bodies', async () => {
  const none = await call('GET', '/admin/v1/servers', undefined, '');
  assert.equal(none.status, 401);
  assert.equal(none.json.error.title, 'Unauthorized');
  const user = await call('GET', '/admin/v1/servers', undefined, userToken);
  assert.equal(user.status, 403);
  assert.equal(user.json.error.title, 'Forbidden');
  const other = await call('GET', `/admin/v1/servers?project_id=${'f'.repeat(32)}`);
  assert.equal(other.status, 404);
});

test('servers: create, read, list with filters and a marker, partial update, delete', async () => {
  const id = randomUUID();
  const created = await call('POST', '/admin/v1/servers', { server: { id, project_id: s.projectId, name: 'api-01', availability_zone: 'az9', console: { host: '127.0.0.1', port, password: 'pw1' } } });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.server.console.password_set, true);
  assert.ok(!created.text.includes('pw1'), 'the password is never returned');
  const dup = await call('POST', '/admin/v1/servers', { server: { id, project_id: s.projectId, name: 'again', console: { host: '127.0.0.1', port } } });
  assert.equal(dup.status, 409);
  const bad = await call('POST', '/admin/v1/servers', { server: { project_id: s.projectId, name: 'x', console: { host: '127.0.0.1', port: 'many' } } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error_code, 'IAM.0011');
  assert.match(bad.json.error_msg, /server\.console\.port must be/);
  const shown = await call('GET', `/admin/v1/servers/${id}`);
  assert.equal(shown.json.server.name, 'api-01');
  const az = await call('GET', `/admin/v1/servers?project_id=${s.projectId}&availability_zone=az9`);
  assert.deepEqual(az.json.servers.map((x: { id: string }) => x.id), [id]);
  const page1 = await call('GET', `/admin/v1/servers?project_id=${s.projectId}&limit=1`);
  assert.equal(page1.json.servers.length, 1);
  assert.ok(page1.json.next_marker);
  const page2 = await call('GET', `/admin/v1/servers?project_id=${s.projectId}&limit=1&marker=${page1.json.next_marker}`);
  assert.notEqual(page2.json.servers[0].id, page1.json.servers[0].id);
  const stopped = await call('GET', `/admin/v1/servers?project_id=${s.projectId}&status=SHUTOFF`);
  assert.deepEqual(stopped.json.servers.map((x: { id: string }) => x.id), [s.shutoff.id]);
  const badQuery = await call('GET', '/admin/v1/servers?limit=0');
  assert.equal(badQuery.status, 400);

  // The password alone: the revision stays; the host alone: the rest of the target stays.
  const pw = await call('PATCH', `/admin/v1/servers/${id}`, { server: { console: { password: 'pw2' } } });
  assert.equal(pw.status, 200, pw.text);
  assert.equal(pw.json.server.console_revision, 1);
  const host = await call('PATCH', `/admin/v1/servers/${id}`, { server: { console: { host: 'localhost' } } });
  assert.equal(host.json.server.console_revision, 2);
  assert.equal(host.json.server.console.port, port);
  const st = await call('PATCH', `/admin/v1/servers/${id}`, { server: { status: 'SHUTOFF' } });
  assert.equal(st.json.server.status, 'SHUTOFF');
  const del = await call('DELETE', `/admin/v1/servers/${id}`);
  assert.equal(del.status, 204);
  assert.equal((await call('GET', `/admin/v1/servers/${id}`)).status, 404);
});

test('bulk sync: 5,000 servers, again (no changes, no revocations), a dry run', async () => {
  const ids = Array.from({ length: 5000 }, () => randomUUID());
  const servers = ids.map((id, n) => ({ id, name: `vm-${n}`, console: { host: '10.0.0.1', port: 5900 + (n % 1000) } }));
  const path = `/admin/v1/projects/${s.projectId}/availability-zones/bulk/servers`;
  const t0 = Date.now();
  const first = await call('PUT', path, { servers });
  assert.equal(first.status, 200, first.text.slice(0, 300));
  assert.equal(first.json.sync.created.length, 5000);
  const second = await call('PUT', path, { servers });
  assert.deepEqual([second.json.sync.created.length, second.json.sync.updated.length, second.json.sync.deleted.length, second.json.sync.revoked.length, second.json.sync.unchanged], [0, 0, 0, 0, 5000]);
  assert.ok(Date.now() - t0 < 60_000);
  const next = servers.slice(1);
  next[0] = { ...next[0]!, console: { host: '10.0.0.2', port: 5901 } };
  const plan = await call('PUT', `${path}?dry_run=true`, { servers: next });
  assert.equal(plan.json.sync.dry_run, true);
  assert.deepEqual(plan.json.sync.deleted, [ids[0]]);
  assert.deepEqual(plan.json.sync.updated, [{ id: ids[1], changed: ['console'] }]);
  assert.ok(await stack.app.services.inventory.findServer(ids[0]!), 'a dry run changes nothing');
  const applied = await call('PUT', path, { servers: next });
  assert.deepEqual(applied.json.sync.revoked.map((r: { reason: string }) => r.reason).sort(), ['console-changed', 'server-deleted']);
  assert.equal(await stack.app.services.inventory.findServer(ids[0]!), null);
  // The other servers of the project are not the zone's.
  assert.ok(await stack.app.services.inventory.findServer(s.active.id));
  const badItem = await call('PUT', path, { servers: [{ id: 'nope', name: 'x', console: {} }] });
  assert.equal(badItem.status, 400);
});

test('sessions: listed with server name, user, credential, node, bytes; ended with a reason the page shows; audit search and CSV export', async () => {
  const { token } = await stack.app.services.consoleTokens.issue(await stack.app.services.inventory.getServer(s.active.id), { issuedBy: `ak:${s.ak}`, userId: 'u-1' });
  const c = await openConsole(`${stack.proxyUrl}/vnc_auto.html?token=${token}`);
  await new Promise((r) => setTimeout(r, 100));
  const list = await call('GET', `/admin/v1/sessions?server_id=${s.active.id}`);
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.sessions.length, 1);
  const row = list.json.sessions[0];
  assert.equal(row.server_name, 'web-01');
  assert.equal(row.credential, `ak:${s.ak}`);
  assert.equal(row.user_id, 'u-1');
  assert.equal(row.client_address, '127.0.0.1');
  assert.ok(row.node_id);
  assert.equal(typeof row.bytes_to_client, 'number');
  const kill = await call('DELETE', `/admin/v1/sessions/${row.id}?reason=${encodeURIComponent('Patching the host')}`);
  assert.equal(kill.status, 202, kill.text);
  const closed = await c.closed;
  assert.equal(closed.code, CloseCode.Killed);
  assert.match(closed.reason, /Patching the host/);
  assert.equal((await call('DELETE', `/admin/v1/servers/${s.active.id}/sessions?reason=all`)).status, 202);

  const audit = await call('GET', `/admin/v1/audit?server_id=${s.active.id}&kind=operator`);
  assert.equal(audit.status, 200, audit.text);
  assert.ok(audit.json.events.some((e: { detail: { action: string; reason: string } }) => e.detail.action === 'session-kill' && e.detail.reason === 'Patching the host'));
  assert.ok(audit.json.events.every((e: { actor_credential: string }) => /^user:/.test(e.actor_credential)), JSON.stringify(audit.json.events.map((e: { actor_credential: string }) => e.actor_credential)));
  const exp = await call('GET', `/admin/v1/audit/export?project_id=${s.projectId}`);
  assert.equal(exp.status, 200);
  assert.match(String(exp.type), /^text\/csv/);
  assert.ok(exp.text.startsWith('id,at,kind,'), 'the header row (fetch drops the byte order mark)');
  const json = await call('GET', '/admin/v1/audit/export?format=json&kind=operator');
  assert.ok(json.text.trim().split('\n').every((l) => JSON.parse(l).kind === 'operator'));
  // Syncs are the project's: an administrator's search by project finds them.
  const syncs = await call('GET', `/admin/v1/audit?project_id=${s.projectId}&kind=operator`);
  assert.equal(syncs.status, 200, syncs.text);
  assert.ok(syncs.json.events.some((e: { detail: { action: string } }) => e.detail.action === 'servers-sync'), JSON.stringify(syncs.json.events.map((e: { detail: { action: string } }) => e.detail.action)));
  assert.ok(syncs.json.events.some((e: { detail: { action: string } }) => e.detail.action === 'servers-sync-plan'));
  const badKind = await call('GET', '/admin/v1/audit?kind=nope');
  assert.equal(badKind.status, 400);
});
