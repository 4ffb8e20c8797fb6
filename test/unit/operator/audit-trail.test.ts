/**
 * The audit trail: every record kind holds who, what, from where (URL issued by AK and by IAM
 * token, session opened and closed with bytes and who closed it, refusals, operator actions from
 * the CLI), searchable ("who opened server X's console last week"), exportable as CSV that a
 * spreadsheet opens safely, purged after the retention, and never holding a secret.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { csvCell, csvHeader, csvRow } from '../../../src/audit/audit-service.js';
import type { AuditEvent } from '../../../src/audit/types.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { runCli } from '../../helpers/cli.js';
import { openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
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
