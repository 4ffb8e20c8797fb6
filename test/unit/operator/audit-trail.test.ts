/**
 * The audit trail: every record kind holds who, what, from where (URL issued by AK and by IAM
 * token, session opened and closed with bytes and who closed it, refusals, operator actions from
 * the CLI), searchable ("who opened server X's console last week"), exportable as CSV that a
 * spreadsheet opens safely, purged after the retention, and never holding a secret.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DemoVncServer } from '../../../src/demo/index.js';
import { csvCell, csvHeader, csvRow } from '../../../src/audit/audit-service.js';
import type { AuditEvent } from '../../../src/audit/types.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { runCli } from '../../helpers/cli.js';
import { openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { parseCsv } from '../../helpers/csv.js';
import { fetchJson, iamTokenByPassword, type FetchReply } from '../../helpers/fetch-json.js';
import { http, signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let stack: Stack;
let s: Seed;
const VNC_PASSWORD = 'vncpw123';
let iamToken = '';

before(async () => {
  vnc = new DemoVncServer({ name: 'audit', width: 160, height: 100, password: VNC_PASSWORD });
  const { port } = await vnc.listen(0, '127.0.0.1');
  stack = await startStack();
  s = await seed(stack.app, { host: '127.0.0.1', port, auth: 'vnc-password', password: VNC_PASSWORD });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

async function consoleUrlByAk(): Promise<string> {
  const r = await signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`,
    '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: s.ak, sk: s.sk });
  assert.equal(r.status, 200, r.text);
  return r.json.remote_console.url as string;
}

async function consoleUrlByIamToken(): Promise<string> {
  const tok = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { name: s.user, password: s.password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } },
  }));
  assert.equal(tok.status, 201, tok.text);
  iamToken = String(tok.headers['x-subject-token']);
  const r = await http('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`,
    { 'content-type': 'application/json', 'x-auth-token': iamToken }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');
  assert.equal(r.status, 200, r.text);
  return r.json.remote_console.url as string;
}

async function all(): Promise<AuditEvent[]> {
  return stack.app.services.stores.audit.listAudit({ limit: 10_000 });
}

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('each record kind says who, what, from where; sessions keep duration, bytes and who closed them; nothing secret', async () => {
  const byAk = await consoleUrlByAk();
  const a = await openConsole(byAk);
  a.client.sendKey(0x61, true);
  await new Promise((r) => setTimeout(r, 100));
  // An operator ends it, with a reason the page shows.
  const live = await stack.app.services.sessions.list({ serverId: s.active.id });
  assert.equal(live.length, 1);
  // The operator's table names the server and the user, not only their ids.
  const table = await runCli(['sessions', 'list'], { ECS_CONSOLE_DATA_DIR: stack.dataDir });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout.split('\n')[0]!, /\bNAME\b.*\bUSER\b/);
  assert.ok(table.stdout.includes('web-01') && table.stdout.includes(String(live[0]!.userId)), table.stdout);
  const kill = await runCli(['sessions', 'kill', live[0]!.id, '--reason', 'Maintenance at 12:00, back soon'], { ECS_CONSOLE_DATA_DIR: stack.dataDir });
  assert.equal(kill.code, 0, kill.stderr);
  const closed = await a.closed;
  assert.equal(closed.code, CloseCode.Killed);
  assert.match(closed.reason, /Maintenance at 12:00, back soon/);

  // By IAM token; then the same link again: refused before the upgrade.
  const byToken = await consoleUrlByIamToken();
  const b = await openConsole(byToken);
  b.ws.close();
  await b.closed;
  const again = await openWs(wsUrlOf(byToken));
  assert.equal(again.ok, false, 'a used link is refused before the upgrade');

  // Operator actions from the CLI.
  const upd = await runCli(['server', 'update', s.shutoff.id, '--name', 'db-renamed'], { ECS_CONSOLE_DATA_DIR: stack.dataDir });
  assert.equal(upd.code, 0, upd.stderr);

  const events = await waitFor(async () => {
    const ev = await all();
    return ev.filter((e) => e.kind === 'closed').length >= 2 && ev.some((e) => e.kind === 'rejected') ? ev : undefined;
  });
  const issued = events.filter((e) => e.kind === 'issued');
  const ak = issued.find((e) => e.actorCredential === `ak:${s.ak}`);
  assert.ok(ak, 'a URL issued to the AK');
  assert.equal(ak.actorUserId !== null, true);
  assert.match(ak.requestId ?? '', /^[0-9a-f]{32}$/);
  assert.equal(ak.clientAddress, '127.0.0.1');
  assert.equal(ak.outcome, 'ok');
  const tok = issued.find((e) => e.detail['iamTokenRef'] !== undefined);
  assert.ok(tok, 'a URL issued to an IAM token');
  assert.match(String(tok.actorCredential), /^user:/);
  assert.match(String(tok.detail['iamTokenRef']), /^[0-9a-f]{8}$/);

  const connected = events.filter((e) => e.kind === 'connected');
  assert.equal(connected.length, 2);
  for (const c of connected) {
    assert.equal(c.clientAddress, '127.0.0.1');
    assert.ok(c.actorCredential, 'who opened it');
    assert.ok(c.sessionId);
  }
  const killed = events.find((e) => e.kind === 'closed' && e.detail['reason'] === 'killed');
  assert.ok(killed);
  assert.match(String(killed.detail['closedBy']), /^cli:/, 'who closed it: the operator');
  assert.ok(Number(killed.detail['durationMs']) >= 0);
  assert.ok(Number(killed.detail['bytesToClient']) > 0, 'bytes to the browser');
  assert.ok(Number(killed.detail['bytesToBackend']) > 0, 'bytes to the server');
  assert.equal(killed.actorCredential, `ak:${s.ak}`, 'the session is the AK holder\'s');
  const byBrowser = events.find((e) => e.kind === 'closed' && e.detail['reason'] === 'client-closed');
  assert.equal(byBrowser?.detail['closedBy'], 'browser');

  const refused = events.find((e) => e.kind === 'rejected' && e.detail['reason'] === 'token-used');
  assert.ok(refused, JSON.stringify(events.filter((e) => e.kind === 'rejected')));
  assert.equal(refused.outcome, 'refused');
  assert.equal(refused.clientAddress, '127.0.0.1');

  const ops = events.filter((e) => e.kind === 'operator');
  const killOp = ops.find((e) => e.detail['action'] === 'session-kill');
  assert.ok(killOp);
  assert.match(String(killOp.actorCredential), /^cli:/);
  assert.equal(killOp.detail['door'], 'cli');
  assert.equal(killOp.detail['reason'], 'Maintenance at 12:00, back soon');
  const updOp = ops.find((e) => e.detail['action'] === 'server-update' && e.serverId === s.shutoff.id);
  assert.ok(updOp);
  assert.equal(updOp.detail['changed'], 'name');

  // No secret anywhere: SK, passwords, IAM token, console tokens, sealed VNC password.
  const text = JSON.stringify(events);
  const tokenOf = (u: string): string => new URL(u).searchParams.get('token')!;
  for (const secret of [s.sk, s.password, VNC_PASSWORD, iamToken, tokenOf(byAk), tokenOf(byToken)]) {
    assert.ok(secret.length >= 8);
    assert.ok(!text.includes(secret), 'no secret in the audit trail');
  }
  const sealed = (await stack.app.services.inventory.getServer(s.active.id)).console.passwordSealed!;
  assert.ok(!text.includes(sealed));
});

test('search answers "who opened server X\'s console last week", newest first, paged by marker', async () => {
  const now = Date.now();
  const week = await stack.app.services.audit.search({
    server: s.active.id, kind: 'connected', from: new Date(now - 7 * 86_400_000).toISOString(), to: new Date(now + 1000).toISOString(),
  });
  assert.equal(week.events.length, 2);
  assert.ok(week.events[0]!.id! > week.events[1]!.id!, 'newest first');
  assert.ok(week.events.every((e) => e.actorUserId && e.clientAddress === '127.0.0.1'));
  const none = await stack.app.services.audit.search({ server: s.active.id, kind: 'connected', to: new Date(now - 7 * 86_400_000).toISOString() });
  assert.equal(none.events.length, 0);
  const p1 = await stack.app.services.audit.search({ limit: 2 });
  assert.equal(p1.events.length, 2);
  assert.ok(p1.nextMarker);
  const p2 = await stack.app.services.audit.search({ limit: 2, marker: p1.nextMarker! });
  assert.ok(p2.events[0]!.id! < p1.events[1]!.id!);
  const byAk = await stack.app.services.audit.search({ accessKey: s.ak, kind: 'issued' });
  assert.equal(byAk.events.length, 1);
  const refused = await stack.app.services.audit.search({ outcome: 'refused' });
  assert.ok(refused.events.length >= 1 && refused.events.every((e) => e.outcome === 'refused'));
  const fromAddr = await stack.app.services.audit.search({ clientAddress: '127.0.0.1', project: s.projectId });
  assert.ok(fromAddr.events.length >= 5);
  await assert.rejects(stack.app.services.audit.search({ kind: 'nope' }), /kind must be one of/);
  await assert.rejects(stack.app.services.audit.search({ from: 'yesterday' }), /from must be an ISO 8601 time/);
  await assert.rejects(stack.app.services.audit.search({ limit: 0 }), /limit must be 1-1000/);
});

test('CLI audit list and export: the same filters; CSV with a header row, RFC 4180 quoting, formulas neutralised', async () => {
  const env = { ECS_CONSOLE_DATA_DIR: stack.dataDir };
  const list = await runCli(['audit', 'list', '--server', s.active.id, '--kind', 'connected', '--json'], env);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(JSON.parse(list.stdout).events.length, 2);
  const exp = await runCli(['audit', 'export', '--server', s.active.id], env);
  assert.equal(exp.code, 0, exp.stderr);
  const lines = exp.stdout.split('\r\n');
  assert.equal(lines[0], '\uFEFFid,at,kind,outcome,node_id,project_id,server_id,session_id,token_ref,actor_user_id,actor_credential,client_address,request_id,target,detail');
  assert.ok(lines.length > 3);
  const bad = await runCli(['audit', 'list', '--outcome', 'maybe'], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /outcome must be one of ok, refused/);
  const jsonl = await runCli(['audit', 'export', '--format', 'json', '--kind', 'operator'], env);
  assert.ok(jsonl.stdout.trim().split('\n').every((l) => JSON.parse(l).kind === 'operator'));

  assert.equal(csvCell('=HYPERLINK("http://x")'), '"\'=HYPERLINK(""http://x"")"');
  assert.equal(csvCell('+1'), "'+1");
  assert.equal(csvCell('-2+3'), "'-2+3");
  assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('line\nbreak'), '"line\nbreak"');
  assert.equal(csvCell(null), '');
  assert.equal(csvCell('plain'), 'plain');
  const row = csvRow({ id: 7, at: 0, kind: 'operator', nodeId: 'n', projectId: null, serverId: null, tokenRef: null, sessionId: null, detail: { reason: '=cmd|calc' } });
  assert.ok(row.endsWith('\r\n'));
  assert.match(row, /"\{""reason"":""=cmd\|calc""\}"/);
  assert.ok(csvHeader().startsWith('\uFEFFid,'));
});

test('retention: records older than auditRetentionDays are purged', async () => {
  const store = stack.app.services.stores.audit;
  const old = Date.now() - 91 * 86_400_000;
  await store.appendAudit({ at: old, kind: 'operator', nodeId: 'n', projectId: null, serverId: null, tokenRef: null, sessionId: null, detail: { action: 'old' } });
  assert.equal(stack.config.auditRetentionDays, 90);
  const before = (await all()).length;
  assert.equal(await stack.app.services.audit.purge(), 1);
  assert.equal((await all()).length, before - 1);
  assert.ok(!(await all()).some((e) => e.detail['action'] === 'old'));
});

/** An administrator of `domain` (created now) and its IAM token from /v3/auth/tokens. */
async function adminToken(domain: string, name: string, password: string, projectId: string): Promise<string> {
  await stack.app.services.identity.createUser({ domain, name, password, admin: true });
  return iamTokenByPassword(stack.apiUrl, domain, name, password, projectId);
}

const call = (token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<FetchReply> =>
  fetchJson(stack.apiUrl, token, method, path, body, headers);

/** Secrets the later tests used: none may appear in any record or export. */
const usedSecrets: string[] = [];

test('identity changes without a project, Nova-issued URLs and admin API actions: who, request id, client address; an administrator finds its domain\'s records, not another domain\'s', async () => {
  const domainId = (await stack.app.services.identity.getProject(s.projectId)).domainId;
  const rootPassword = 'R00t-passw0rd';
  const root = await adminToken(s.domain, 'root', rootPassword, s.projectId);
  const other = await stack.app.services.identity.createProject({ name: 'elsewhere', domain: 'globex' });
  const stranger = await adminToken('globex', 'groot', rootPassword, other.id);
  usedSecrets.push(rootPassword, root, stranger);

  // A user's lifecycle through the IAM API: no project in any of these records.
  const bobPassword = 'B0b-passw0rd-1';
  const created = await call(root, 'POST', '/v3/users', { user: { name: 'bob', domain_id: domainId, password: bobPassword } });
  assert.equal(created.status, 201, created.text);
  const bob = created.json.user.id as string;
  const disabled = await call(root, 'PUT', `/v3.0/OS-USER/users/${bob}`, { user: { enabled: false } });
  assert.equal(disabled.status, 200, disabled.text);
  const key = await call(root, 'POST', '/v3.0/OS-CREDENTIAL/credentials', { credential: { user_id: bob } });
  assert.equal(key.status, 201, key.text);
  usedSecrets.push(bobPassword, key.json.credential.secret);
  assert.equal((await call(root, 'DELETE', `/v3/users/${bob}`)).status, 204);

  for (const kind of ['user-created', 'user-disabled', 'user-deleted', 'ak-created']) {
    const found = await call(root, 'GET', `/admin/v1/audit?kind=${kind}`);
    assert.equal(found.status, 200, found.text);
    const e = found.json.events.find((x: { target: string }) => x.target === (kind === 'ak-created' ? `ak:${key.json.credential.access}` : `user:${bob}`));
    assert.ok(e, `${kind} is in the administrator's search of its domain`);
    assert.match(e.actor_credential, /^user:[0-9a-f]{32}$/);
    assert.match(e.request_id, /^[0-9a-f]{32}$/);
    assert.equal(e.client_address, '127.0.0.1');
    // Another domain's administrator sees none of it.
    const theirs = await call(stranger, 'GET', `/admin/v1/audit?kind=${kind}`);
    assert.equal(theirs.status, 200, theirs.text);
    assert.ok(!theirs.json.events.some((x: { target: string }) => x.target === e.target), `${kind} stays in its domain`);
  }
  // The domain's records are in its export too; a search by project still means that project only.
  const exported = await call(root, 'GET', '/admin/v1/audit/export?format=json&kind=user-deleted');
  assert.ok(exported.text.includes(`user:${bob}`));
  const byProject = await call(root, 'GET', `/admin/v1/audit?project_id=${s.projectId}&kind=user-deleted`);
  assert.equal(byProject.json.events.length, 0);

  // A console URL through the Nova-compatible API: the same who, request id and client address.
  const nova = await call(root, 'POST', `/v2.1/${s.projectId}/servers/${s.active.id}/remote-consoles`,
    { remote_console: { protocol: 'vnc', type: 'novnc' } }, { 'openstack-api-version': 'compute 2.6' });
  assert.equal(nova.status, 200, nova.text);
  const ref = createHash('sha256').update(new URL(nova.json.remote_console.url).searchParams.get('token')!).digest('hex').slice(0, 8);
  usedSecrets.push(new URL(nova.json.remote_console.url).searchParams.get('token')!);
  const issued = (await all()).find((e) => e.kind === 'issued' && e.tokenRef === ref);
  assert.ok(issued, 'the Nova URL is audited');
  assert.match(issued.requestId ?? '', /^[0-9a-f]{32}$/);
  assert.equal(issued.clientAddress, '127.0.0.1');
  assert.match(String(issued.actorCredential), /^user:/);
  assert.match(String(issued.detail['iamTokenRef']), /^[0-9a-f]{8}$/);

  // An operator action through the admin API: its actor, door, request id and client address.
  const vncPassword = 'newvncpw';
  usedSecrets.push(vncPassword);
  const patched = await call(root, 'PATCH', `/admin/v1/servers/${s.shutoff.id}`, { server: { console: { password: vncPassword } } });
  assert.equal(patched.status, 200, patched.text);
  const op = (await stack.app.services.audit.search({ kind: 'operator', server: s.shutoff.id })).events[0]!;
  assert.equal(op.detail['action'], 'server-update');
  assert.equal(op.detail['door'], 'api');
  assert.equal(op.detail['changed'], 'console.password');
  assert.match(String(op.actorCredential), /^user:/);
  assert.ok(op.actorUserId);
  assert.match(op.requestId ?? '', /^[0-9a-f]{32}$/);
  assert.equal(op.clientAddress, '127.0.0.1');
});

test('every refusal before the upgrade is a rejected record: its reason, the client address, outcome refused', async () => {
  const inv = stack.app.services.inventory;
  const proxy = new URL(stack.proxyUrl);
  const issue = async (id = s.active.id): Promise<string> => (await stack.app.services.consoleTokens.issue(await inv.getServer(id), { issuedBy: `ak:${s.ak}`, userId: 'u-1' })).token;
  const ws = (token: string, path = '/websockify'): string => `ws://${proxy.host}${path}?token=${encodeURIComponent(token)}`;
  const tried: Array<{ reason: string; token: string }> = [];
  const refused = async (reason: string, token: string, path?: string, origin?: string): Promise<void> => {
    const r = await openWs(ws(token, path), origin ? { origin } : {});
    assert.equal(r.ok, false, reason);
    tried.push({ reason, token });
    usedSecrets.push(token);
  };
  await refused('bad-origin', await issue(), undefined, 'http://evil.example');
  await refused('token-unknown', 'x'.repeat(43));
  const once = await issue();
  const first = await openWs(ws(once));
  assert.ok(first.ok);
  first.ws.close();
  await refused('token-used', once);
  await refused('token-wrong-kind', await issue(), '/serial-websocket');
  // A console moved after the URL was issued: the URL is revoked.
  const moved = await inv.addServer({ projectId: s.projectId, name: 'moving', console: { host: '127.0.0.1', port: 5999 } });
  const before = await issue(moved.id);
  await inv.updateServer(moved.id, { console: { host: 'localhost' } }, { actor: { userId: null, credential: 'cli:test' }, door: 'cli' });
  await refused('server-not-active', before);
  const events = await waitFor(async () => {
    const ev = (await all()).filter((e) => e.kind === 'rejected');
    return tried.every((t) => ev.some((e) => e.detail['reason'] === t.reason)) ? ev : undefined;
  });
  for (const t of tried) {
    const e = events.find((x) => x.detail['reason'] === t.reason)!;
    assert.equal(e.outcome, 'refused', t.reason);
    assert.equal(e.clientAddress, '127.0.0.1', t.reason);
    if (t.reason !== 'token-unknown' && t.reason !== 'bad-origin') assert.match(e.tokenRef ?? '', /^[0-9a-f]{8}$/, t.reason);
  }
});

test('the export streams every record (many pages), and its CSV reads back as the JSON export: quoting, line breaks, formulas guarded', async () => {
  const root = await iamTokenByPassword(stack.apiUrl, s.domain, 'root', 'R00t-passw0rd', s.projectId);
  const store = stack.app.services.stores.audit;
  const hostile = { clientAddress: '=1+2', target: '@SUM(A1)', requestId: '-3', detail: { reason: 'a "quoted", comma\nand a line' } };
  await store.appendAudit({ at: Date.now(), kind: 'operator', nodeId: '+node', projectId: s.projectId, serverId: null, tokenRef: null, sessionId: null, ...hostile });
  // More than two pages of the store's reads (1,000 a page).
  const many = 2_500;
  await Promise.all(Array.from({ length: many }, (_, i) => store.appendAudit({
    at: Date.now(), kind: 'operator', nodeId: 'bulk', projectId: s.projectId, serverId: null, tokenRef: null, sessionId: null, detail: { action: 'bulk', n: i },
  })));
  const csv = await call(root, 'GET', `/admin/v1/audit/export?project_id=${s.projectId}`);
  const json = await call(root, 'GET', `/admin/v1/audit/export?project_id=${s.projectId}&format=json`);
  assert.equal(csv.status, 200);
  const objects = json.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(objects.filter((o) => o['node_id'] === 'bulk').length === many, 'every record, across pages');
  const rows = parseCsv(csv.text);
  const header = rows[0]!;
  assert.equal(header.length, 15);
  assert.equal(rows.length - 1, objects.length, 'one row per record');
  const guarded = (v: unknown): string => {
    const s0 = v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /^[=+\-@\t\r]/.test(s0) ? `'${s0}` : s0;
  };
  for (const [i, o] of objects.entries()) {
    const row = rows[i + 1]!;
    assert.equal(row.length, header.length, `row ${i + 1} has every column`);
    for (const [c, name] of header.entries()) assert.equal(row[c], guarded(o[name]), `row ${i + 1} ${name}`);
  }
  const bad = rows.find((r) => r[header.indexOf('node_id')] === "'+node")!;
  assert.ok(bad, 'the hostile record is there, guarded');
  assert.equal(bad[header.indexOf('client_address')], "'=1+2");
  assert.equal(bad[header.indexOf('target')], "'@SUM(A1)");
  assert.equal(bad[header.indexOf('request_id')], "'-3");
  assert.deepEqual(JSON.parse(bad[header.indexOf('detail')]!), hostile.detail);
  // No cell a spreadsheet would run as a formula.
  for (const r of rows) for (const cell of r) assert.doesNotMatch(cell, /^[=+\-@\t\r]/);
});

test('no record and no export holds a secret: SKs, passwords, IAM tokens, console tokens, VNC passwords', async () => {
  const text = JSON.stringify(await stack.app.services.stores.audit.listAudit({ limit: 100_000 }));
  const csv = (await runCli(['audit', 'export'], { ECS_CONSOLE_DATA_DIR: stack.dataDir })).stdout;
  assert.ok(usedSecrets.length >= 10);
  for (const secret of [...usedSecrets, s.sk, s.otherSk, s.limitedSk, s.password, VNC_PASSWORD]) {
    assert.ok(secret.length >= 8);
    assert.ok(!text.includes(secret), 'no secret in the records');
    assert.ok(!csv.includes(secret), 'no secret in the export');
  }
});
