// The console page's pure modules (web/i18n.js, web/reasons.js) run in Node as they are served,
// and the page's static files are checked for what the CSP would block.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findWebDir } from '../../../src/web/static-handler.js';

type Lang = 'en' | 'zh';
interface I18n {
  LANGS: readonly Lang[];
  STRINGS: Record<Lang, Record<string, string>>;
  pickLang(raw: string | null | undefined): Lang;
  translate(lang: Lang, key: string, vars?: Record<string, string | number>): string;
}
type Outcome = { proceed: true; name: string | null } | { proceed: false; reason: string };
interface Reasons {
  PRECHECK_REASONS: Record<string, string>;
  REVOKED_REASONS: Record<string, string>;
  CLOSE_REASONS: Record<string, string>;
  MAX_NAME_CHARS: number;
  precheckOutcome(status: number | null, body: unknown): Outcome;
  precheck(token: string, options?: { fetchImpl?: typeof fetch; timeoutMs?: number }): Promise<Outcome>;
  closeOutcome(e: { code: number | null; wasConnected: boolean; securityFailure: boolean }): { state: string; reason: string };
  canRetry(reason: string): boolean;
  adviceKey(reason: string): string;
}

const webDir = findWebDir();
let i18n: I18n;
let reasons: Reasons;

before(async () => {
  i18n = (await import(pathToFileURL(join(webDir, 'i18n.js')).href)) as I18n;
  reasons = (await import(pathToFileURL(join(webDir, 'reasons.js')).href)) as Reasons;
});

/** Every reason key the page can put in body[data-reason]. */
function allReasons(): string[] {
  return [
    ...Object.values(reasons.PRECHECK_REASONS),
    ...Object.values(reasons.REVOKED_REASONS),
    'link-revoked',
    ...Object.values(reasons.CLOSE_REASONS),
    'token-missing', 'security-failure', 'connect-failed', 'connection-lost',
  ];
}

test('pickLang: ZH in any case gives Chinese, anything else English', () => {
  for (const v of ['ZH', 'zh', 'Zh', 'zh-cn', 'zh-CN', 'ZH-CN', 'zh_CN', ' zh ']) assert.equal(i18n.pickLang(v), 'zh', v);
  for (const v of ['EN', 'en', 'en-US', '', null, undefined, 'fr', 'zh-tw', '<script>']) assert.equal(i18n.pickLang(v), 'en', String(v));
});

test('both languages have the same keys, none empty, with the same placeholders', () => {
  const en = i18n.STRINGS.en;
  const zh = i18n.STRINGS.zh;
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  const placeholders = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
  for (const key of Object.keys(en)) {
    assert.ok(en[key]!.trim() && zh[key]!.trim(), key);
    assert.deepEqual(placeholders(zh[key]!), placeholders(en[key]!), key);
  }
  assert.notEqual(zh['state.connected'], en['state.connected']);
});

test('translate fills placeholders and falls back to English, then to the key', () => {
  assert.equal(i18n.translate('en', 'detail', { text: 'x' }), 'Details: x');
  assert.equal(i18n.translate('zh', 'dialog.skipped', { count: 3 }), '有 3 个字符无法通过按键输入，已跳过。');
  assert.equal(i18n.translate('en', 'no.such.key'), 'no.such.key');
  assert.equal(i18n.translate('xx' as Lang, 'state.connected'), 'Connected');
  // Values are inserted verbatim (they go into textContent), and unknown placeholders stay.
  assert.equal(i18n.translate('en', 'detail', { text: '{text}<b>' }), 'Details: {text}<b>');
  assert.equal(i18n.translate('en', 'detail'), 'Details: {text}');
});

test('every reason and its advice has a text in both languages', () => {
  for (const lang of i18n.LANGS) {
    for (const reason of allReasons()) {
      assert.ok(i18n.STRINGS[lang][`reason.${reason}`], `${lang} reason.${reason}`);
      assert.ok(i18n.STRINGS[lang][reasons.adviceKey(reason)], `${lang} ${reasons.adviceKey(reason)}`);
    }
    for (const state of ['checking', 'connecting', 'connected', 'failed', 'disconnected']) {
      assert.ok(i18n.STRINGS[lang][`state.${state}`], `${lang} state.${state}`);
    }
  }
});

test('every close code of the proxy contract has its own reason', () => {
  const codes = [1000, 4100, 4101, 4102, 4103, 4200, 4201, 4202, 4203, 4204, 4205, 4210, 4400, 4402];
  assert.deepEqual(Object.keys(reasons.CLOSE_REASONS).map(Number).sort(), codes);
  const keys = codes.map((c) => reasons.CLOSE_REASONS[c]);
  assert.equal(new Set(keys).size, codes.length);
  assert.equal(reasons.CLOSE_REASONS[4101], 'backend-auth-failed');
  assert.equal(reasons.CLOSE_REASONS[4100], 'backend-unreachable');
});

test('precheckOutcome: valid proceeds with the name; refusals stop; the rest proceeds', () => {
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'valid', server: { name: 'web-01' }, expiresAt: '2030-01-01T00:00:00Z' }), { proceed: true, name: 'web-01' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'valid' }), { proceed: true, name: null });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'valid', server: { name: 42 } }), { proceed: true, name: null });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'valid', server: { name: 'x'.repeat(5000) } }), { proceed: true, name: 'x'.repeat(reasons.MAX_NAME_CHARS) });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'used' }), { proceed: false, reason: 'token-used' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'expired' }), { proceed: false, reason: 'token-expired' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'unknown' }), { proceed: false, reason: 'token-unknown' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active' }), { proceed: false, reason: 'server-not-active' });
  // A revoked link says what happened (a reason a later proxy adds reads as a revoked link).
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active', reason: 'server-stopped' }), { proceed: false, reason: 'server-not-active' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active', reason: 'server-deleted' }), { proceed: false, reason: 'server-deleted' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active', reason: 'console-changed' }), { proceed: false, reason: 'console-moved' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active', reason: 'credential-revoked' }), { proceed: false, reason: 'credential-revoked' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active', reason: 'user-disabled' }), { proceed: false, reason: 'link-revoked' });
  assert.deepEqual(reasons.precheckOutcome(200, { state: 'server-not-active', reason: '__proto__' }), { proceed: false, reason: 'link-revoked' });
  assert.deepEqual(reasons.precheckOutcome(429, { state: 'throttled' }), { proceed: false, reason: 'throttled' });
  assert.deepEqual(reasons.precheckOutcome(429, null), { proceed: false, reason: 'throttled' });
  // Not understood: the WebSocket decides.
  for (const [status, body] of [[null, null], [500, null], [404, { state: 'used' }], [200, null], [200, { state: 'toString' }], [200, { state: '__proto__' }], [200, 'used']] as const) {
    assert.deepEqual(reasons.precheckOutcome(status, body), { proceed: true, name: null }, `${status} ${JSON.stringify(body)}`);
  }
});

test('precheck (both pages): posts the token in the body, never in the URL; answers, errors, non-JSON and a hung proxy each give an outcome', async () => {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const answer = (status: number, body: string) => async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    return new Response(body, { status, headers: { 'Content-Type': 'application/json' } });
  };
  const ok = await reasons.precheck('tok-1', { fetchImpl: answer(200, JSON.stringify({ state: 'valid', server: { name: 'web-01' } })) as typeof fetch });
  assert.deepEqual(ok, { proceed: true, name: 'web-01' });
  assert.equal(calls[0]!.url, '/api/console/info');
  assert.equal(calls[0]!.init.method, 'POST');
  assert.deepEqual(JSON.parse(String(calls[0]!.init.body)), { token: 'tok-1' });
  assert.deepEqual(await reasons.precheck('t', { fetchImpl: answer(200, JSON.stringify({ state: 'used' })) as typeof fetch }), { proceed: false, reason: 'token-used' });
  assert.deepEqual(await reasons.precheck('t', { fetchImpl: answer(429, '{}') as typeof fetch }), { proceed: false, reason: 'throttled' });
  assert.deepEqual(await reasons.precheck('t', { fetchImpl: answer(502, '<html>bad gateway</html>') as typeof fetch }), { proceed: true, name: null });
  const failing = (async () => { throw new TypeError('network'); }) as typeof fetch;
  assert.deepEqual(await reasons.precheck('t', { fetchImpl: failing }), { proceed: true, name: null });
  // A proxy that never answers: the timeout aborts the request and the page goes on to the WebSocket.
  const hung = ((_u: string, init?: RequestInit) => new Promise<Response>((_resolve, reject) => {
    init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
  })) as typeof fetch;
  assert.deepEqual(await reasons.precheck('t', { fetchImpl: hung, timeoutMs: 20 }), { proceed: true, name: null });
});

test('closeOutcome: our codes win; failed before connect, disconnected after', () => {
  assert.deepEqual(reasons.closeOutcome({ code: 4101, wasConnected: false, securityFailure: true }), { state: 'failed', reason: 'backend-auth-failed' });
  assert.deepEqual(reasons.closeOutcome({ code: 4202, wasConnected: true, securityFailure: false }), { state: 'disconnected', reason: 'idle-timeout' });
  assert.deepEqual(reasons.closeOutcome({ code: 1000, wasConnected: true, securityFailure: false }), { state: 'disconnected', reason: 'closed' });
  assert.deepEqual(reasons.closeOutcome({ code: 1000, wasConnected: false, securityFailure: false }), { state: 'failed', reason: 'connect-failed' });
  assert.deepEqual(reasons.closeOutcome({ code: null, wasConnected: false, securityFailure: true }), { state: 'failed', reason: 'security-failure' });
  assert.deepEqual(reasons.closeOutcome({ code: 1005, wasConnected: false, securityFailure: true }), { state: 'failed', reason: 'security-failure' });
  assert.deepEqual(reasons.closeOutcome({ code: null, wasConnected: false, securityFailure: false }), { state: 'failed', reason: 'connect-failed' });
  assert.deepEqual(reasons.closeOutcome({ code: null, wasConnected: true, securityFailure: false }), { state: 'disconnected', reason: 'connection-lost' });
  assert.deepEqual(reasons.closeOutcome({ code: 4999, wasConnected: true, securityFailure: false }), { state: 'disconnected', reason: 'connection-lost' });
});

test('a backend the console service cannot reach or log in to: the operator must act, a new URL would not help (EN and ZH)', () => {
  for (const reason of ['backend-unreachable', 'backend-auth-failed', 'backend-protocol-error']) {
    assert.equal(reasons.adviceKey(reason), 'advice.operator', reason);
    assert.equal(reasons.canRetry(reason), false, reason);
  }
  assert.equal(reasons.closeOutcome({ code: 4100, wasConnected: false, securityFailure: true }).reason, 'backend-unreachable');
  const en = i18n.STRINGS.en;
  const zh = i18n.STRINGS.zh;
  assert.match(en['advice.operator']!, /new remote login URL would fail the same way/);
  assert.match(en['advice.operator']!, /administrator of the console service/);
  assert.doesNotMatch(en['advice.operator']!, /works once/);
  assert.match(zh['advice.operator']!, /重新获取远程登录地址也会同样失败/);
  assert.match(zh['advice.operator']!, /管理员/);
  assert.equal(en['reason.backend-unreachable'], 'The console service could not reach the server’s console.');
  assert.equal(en['reason.backend-auth-failed'], 'The console service could not log in to the server’s console.');
  assert.equal(zh['reason.backend-unreachable'], '控制台服务无法连接到云服务器的控制台。');
  assert.equal(zh['reason.backend-auth-failed'], '控制台服务无法登录云服务器的控制台。');
});

test('only reasons that leave the token unused offer a retry', () => {
  const retryable = allReasons().filter((r) => reasons.canRetry(r)).sort();
  assert.deepEqual(retryable, ['connect-failed', 'throttled']);
});

test('the page has no inline script, inline style or event-handler attribute (the CSP would block them)', () => {
  const html = readFileSync(join(webDir, 'vnc_auto.html'), 'utf8');
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    assert.match(m[1]!, /\bsrc="\/static\/[\w.-]+\.js"/, 'every script is an external file under /static/');
    assert.equal(m[2]!.trim(), '', 'no inline script body');
  }
  assert.doesNotMatch(html, /<style\b/i);
  assert.doesNotMatch(html, /\sstyle\s*=/i);
  assert.doesNotMatch(html, /\son[a-z]+\s*=/i);
  assert.doesNotMatch(html, /(src|href)\s*=\s*"(https?:)?\/\//i, 'nothing from another origin');
});

test('every data-i18n key in the page exists', () => {
  const html = readFileSync(join(webDir, 'vnc_auto.html'), 'utf8');
  const keys = [...html.matchAll(/data-i18n(?:-title)?="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(keys.length > 10);
  for (const key of keys) assert.ok(i18n.STRINGS.en[key], key);
});

test('the page scripts never build HTML from strings (CVE-2017-18635)', () => {
  for (const name of readdirSync(webDir).filter((n) => n.endsWith('.js'))) {
    const src = readFileSync(join(webDir, name), 'utf8');
    assert.doesNotMatch(src, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/, name);
  }
});
