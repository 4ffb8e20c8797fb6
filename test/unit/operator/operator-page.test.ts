/**
 * The operator's page as served (/operator/ on the API listener: its CSP, no inline code, both
 * languages complete, its pure helpers) and the admin API's recording policies it relies on (set,
 * list, remove; administrators only, their domain's servers and projects only; audited).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findWebDir } from '../../../src/web/static-handler.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';
import { fetchJson, RawBody, type FetchReply } from '../../helpers/fetch-json.js';

type Lang = 'en' | 'zh';
interface OperatorI18n {
  OPERATOR_STRINGS: Record<Lang, Record<string, string>>;
  t(lang: Lang, key: string, vars?: Record<string, string | number>): string;
  auditQuery(fields: Record<string, string>): URLSearchParams;
  formatBytes(n: number): string;
}
interface Reasons {
  OPERATOR_END_TEXT: string;
  operatorReason(text: unknown): string | null;
}

const webDir = findWebDir();
let i18n: OperatorI18n;
let reasons: Reasons;
let stack: Stack;
let s: Seed;
let adminToken = '';
let userToken = '';

async function iamToken(name: string, password: string): Promise<string> {
  const r = await fetch(`${stack.apiUrl}/v3/auth/tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name, password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } } }),
  });
  assert.equal(r.status, 201, await r.text());
  return r.headers.get('x-subject-token')!;
}

before(async () => {
  i18n = (await import(pathToFileURL(join(webDir, 'operator-i18n.js')).href)) as OperatorI18n;
  reasons = (await import(pathToFileURL(join(webDir, 'reasons.js')).href)) as Reasons;
  stack = await startStack();
  s = await seed(stack.app);
  await stack.app.services.identity.createUser({ domain: s.domain, name: 'ops', password: 'Adm1n-passw0rd', admin: true });
  adminToken = await iamToken('ops', 'Adm1n-passw0rd');
  userToken = await iamToken(s.user, s.password);
});
after(async () => {
  await stack.stop();
});

const call = (method: string, path: string, body?: unknown, token = adminToken): Promise<FetchReply> => fetchJson(stack.apiUrl, token, method, path, body);

test('the page is served on the API listener with the console page\'s strict CSP, no-store, and its assets', async () => {
  const page = await call('GET', '/operator/', undefined, '');
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'[;]/);
  assert.match(csp, /style-src 'self'[;]/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.match(page.text, /src="\/static\/operator\.js"/);
  const script = await call('GET', '/static/operator.js', undefined, '');
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type') ?? '', /javascript/);
  const i18nFile = await call('GET', '/static/operator-i18n.js', undefined, '');
  assert.equal(i18nFile.status, 200);
  const redirect = await call('GET', '/operator', undefined, '');
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get('location'), '/operator/');
  // The page file itself is only reachable through its route (with its headers).
  assert.equal((await call('GET', '/static/operator.html', undefined, '')).status, 404);
});

test('the page has no inline script, style or event handler, and every data-i18n key exists in both languages', () => {
  const html = readFileSync(join(webDir, 'operator.html'), 'utf8');
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    assert.match(m[1]!, /\bsrc="\/static\/[\w.-]+\.js"/);
    assert.equal(m[2]!.trim(), '');
  }
  assert.doesNotMatch(html, /<style\b|\sstyle\s*=|\son[a-z]+\s*=/i);
  assert.doesNotMatch(html, /(src|href)\s*=\s*"(https?:)?\/\//i, 'nothing from another origin');
  const keys = [...html.matchAll(/data-i18n(?:-title)?="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(keys.length > 40);
  const { en, zh } = i18n.OPERATOR_STRINGS;
  for (const key of keys) assert.ok(key in en, key);
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort(), 'both languages have every key');
  const js = readFileSync(join(webDir, 'operator.js'), 'utf8');
  for (const m of js.matchAll(/\bt\('([\w.-]+)'/g)) assert.ok(m[1]! in en, m[1]!);
  // NOTE: the IAM token never goes into a URL or into localStorage.
  assert.ok(!/localStorage\.|[?&]token=/.test(js), 'no localStorage, no token in a query');
  assert.equal(i18n.t('zh', 'state.ready', { user: 'ops', domain: 'd' }), '已登录：ops（d）');
});

test('helpers: audit filters as the admin API\'s query (empty left out, local times as UTC), byte counts, the operator\'s reason from a close frame', () => {
  const q = i18n.auditQuery({ server_id: ' abc ', user_id: '', kind: 'closed', from: '2026-01-02T03:04', limit: '50' });
  assert.equal(q.get('server_id'), 'abc');
  assert.equal(q.has('user_id'), false);
  assert.equal(q.get('from'), new Date('2026-01-02T03:04').toISOString());
  assert.equal(i18n.auditQuery({ to: 'not a time' }).has('to'), false);
  assert.equal(i18n.formatBytes(512), '512 B');
  assert.equal(i18n.formatBytes(1536), '1.5 KiB');
  assert.equal(reasons.operatorReason(`${reasons.OPERATOR_END_TEXT} maintenance`), 'maintenance');
  assert.equal(reasons.operatorReason(reasons.OPERATOR_END_TEXT), null);
  assert.equal(reasons.operatorReason(undefined), null);
  // The page strips the proxy's own sentence: the two must agree.
  const proxy = readFileSync(join(webDir, '..', 'src', 'proxy', 'proxy-server.ts'), 'utf8');
  assert.ok(proxy.includes(`'session-kill': '${reasons.OPERATOR_END_TEXT}'`));
});

test('admin API recording policies: set per server and per project, listed, removed; administrators of the domain only; audited', async () => {
  const path = `/admin/v1/servers/${s.active.id}/recording-policy`;
  assert.equal((await call('PUT', path, { recording_policy: { enabled: true } }, '')).status, 401);
  const denied = await call('PUT', path, { recording_policy: { enabled: true } }, userToken);
  assert.equal(denied.status, 403);
  assert.equal(denied.json.error.title, 'Forbidden');
  const bad = await call('PUT', path, { recording_policy: { enabled: 'yes' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error_code, 'IAM.0011');
  assert.equal((await call('PUT', path, new RawBody('{'))).status, 400);
  assert.equal((await call('PUT', `/admin/v1/servers/${s.active.id}/recording-policy`, { recording_policy: { enabled: true, quota_bytes: 10 } })).status, 400, 'a quota is a project\'s');

  const set = await call('PUT', path, { recording_policy: { enabled: true, keystrokes: true, retention_days: 7 } });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual({ ...set.json.recording_policy, updated: null }, {
    scope: 'server', scope_id: s.active.id, project_id: s.projectId, enabled: true, keystrokes: true, retention_days: 7, quota_bytes: null, updated: null,
    updated_by: set.json.recording_policy.updated_by,
  });
  const project = await call('PUT', `/admin/v1/projects/${s.projectId}/recording-policy`, { recording_policy: { enabled: true, quota_bytes: 1_000_000 } });
  assert.equal(project.status, 200, project.text);
  assert.equal(project.json.recording_policy.keystrokes, false, 'key events are off unless asked');
  assert.equal((await stack.app.services.recordings.policyFor(s.projectId, s.active.id))?.keystrokes, true, 'the server\'s own wins');

  const list = await call('GET', `/admin/v1/recording-policies?project_id=${s.projectId}`);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.recording_policies.map((p: { scope: string }) => p.scope).sort(), ['project', 'server']);
  assert.equal((await call('GET', `/admin/v1/recording-policies?project_id=${'f'.repeat(32)}`)).status, 404);
  assert.equal((await call('PUT', `/admin/v1/servers/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}/recording-policy`, { recording_policy: { enabled: true } })).status, 404);

  assert.equal((await call('DELETE', path)).status, 204);
  assert.equal((await call('DELETE', path)).status, 404);
  assert.equal((await stack.app.services.recordings.policyFor(s.projectId, s.active.id))?.scope, 'project');
  assert.equal((await call('DELETE', `/admin/v1/projects/${s.projectId}/recording-policy`)).status, 204);

  const audit = await call('GET', `/admin/v1/audit?kind=operator&project_id=${s.projectId}`);
  const actions = audit.json.events.map((e: { detail: { action: string } }) => e.detail.action);
  for (const a of ['recording-policy-set', 'recording-policy-remove']) assert.ok(actions.includes(a), a);
});
