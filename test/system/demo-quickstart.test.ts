/**
 * The demo as a newcomer runs it: `serve --demo` prints a console URL, credentials, a curl
 * example and an SDK snippet; each works as printed (run through bash from the repository); the
 * console opens; `console-url` works against it; a restart keeps the objects, the credentials and
 * every issued token. Uses bash and curl (system suite).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, startCli, type RunningServer } from '../helpers/cli.js';
import { openConsole } from '../helpers/console-client.js';
import { requireBinary } from '../helpers/real-vnc.js';
import { tempDir } from '../helpers/stack.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dataDir = tempDir();
const env = { ECS_CONSOLE_DATA_DIR: dataDir, ECS_CONSOLE_LOG_LEVEL: 'warn' };
const args = ['serve', '--demo', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'];
let server: RunningServer;

function bash(script: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('/bin/bash', ['-c', script], { cwd: ROOT, timeout: 60_000 }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err }));
  });
}

async function started(): Promise<RunningServer> {
  const s = await startCli(args, env);
  const deadline = Date.now() + 10_000;
  while (!/Stop with Ctrl\+C/.test(s.stdout()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return s;
}

const printedUrl = (out: string): string => /Open this console now.*\n\s+(http\S+)/.exec(out)![1]!;

before(async () => {
  requireBinary('/usr/bin/curl', 'curl');
  server = await started();
});
after(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
});

test('the printed URL opens a working console on the first demo server', async () => {
  const c = await openConsole(printedUrl(server.stdout()));
  assert.equal(c.client.name, 'demo-web-01');
  await c.client.waitUntil(() => c.client.updateCount > 0);
  c.ws.close();
});

test('demo.json is 0600 and holds what was printed', () => {
  const path = join(dataDir, 'demo.json');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const d = JSON.parse(readFileSync(path, 'utf8'));
  for (const k of ['apiUrl', 'consoleBaseUrl', 'projectId', 'domain', 'user', 'password', 'ak', 'sk']) assert.ok(d[k], k);
  assert.deepEqual(d.servers.map((s: { name: string; status: string }) => [s.name, s.status]), [['demo-web-01', 'ACTIVE'], ['demo-db-01', 'ACTIVE'], ['demo-batch-01', 'SHUTOFF']]);
  const out = server.stdout();
  for (const v of [d.projectId, d.ak, d.sk, d.user, d.password, d.apiUrl]) assert.ok(out.includes(v), `printed: ${v}`);
});

test('the printed curl commands work as printed', async () => {
  const lines = server.stdout().split('\n').map((l) => l.trim()).filter((l) => l.startsWith('TOKEN=$(curl') || l.startsWith('curl -s -X POST'));
  assert.equal(lines.length, 2);
  const r = await bash(lines.join('\n'));
  assert.equal(r.code, 0, r.err);
  const body = JSON.parse(r.out);
  assert.match(body.remote_console.url, /\/vnc_auto\.html\?token=[0-9a-f-]{36}&lang=EN&tLength=70$/);
  const c = await openConsole(body.remote_console.url);
  c.ws.close();
});

test('the printed SDK snippet works as printed (official Huawei SDK, AK/SK)', async () => {
  const line = server.stdout().split('\n').map((l) => l.trim()).find((l) => l.startsWith("node -e '"));
  assert.ok(line);
  const r = await bash(line);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out.trim(), /^http:\/\/127\.0\.0\.1:\d+\/vnc_auto\.html\?token=[0-9a-f-]{36}&lang=EN&tLength=70$/);
});

test('the printed IAM SDK snippet (list my access keys) works as printed, and demo.json holds it', async () => {
  const lines = server.stdout().split('\n').map((l) => l.trim()).filter((l) => l.startsWith("node -e '"));
  assert.equal(lines.length, 2);
  const r = await bash(lines[1]!);
  assert.equal(r.code, 0, r.err);
  const d = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8'));
  const keys = JSON.parse(r.out) as Array<{ access: string; status: string; user_id: string }>;
  assert.deepEqual(keys.map((k) => [k.access, k.status]), [[d.ak, 'active']]);
  assert.equal(lines[1], `node -e '${d.examples.iamListMyAccessKeys}'`);
  assert.match(d.domainId, /^[0-9a-f]{32}$/);
});

test('console-url against the demo: ACTIVE servers give URLs (one behind a VNC password), SHUTOFF a clear error', async () => {
  const d = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8'));
  const db = await runCli(['console-url', '--server', d.servers[1].id], env);
  assert.equal(db.code, 0, db.stderr);
  const c = await openConsole(db.stdout.trim());
  assert.equal(c.client.name, 'demo-db-01');
  await c.client.waitUntil(() => c.client.updateCount > 0);
  c.ws.close();
  const off = await runCli(['console-url', '--server', d.servers[2].id], env);
  assert.notEqual(off.code, 0);
  assert.match(off.stderr, /Ecs\.0100/);
  const zh = await runCli(['console-url', '--server', d.servers[0].id, '--lang', 'zh-cn'], env);
  assert.match(zh.stdout, /lang=ZH/);
  const bad = await runCli(['console-url', '--server', d.servers[0].id, '--sk', 'wrong'], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /401 APIGW\.0301/);
});

test('a restart keeps the objects, the credentials and every issued, unused token', async () => {
  const before = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8'));
  const d = before;
  const issued = await runCli(['console-url', '--server', d.servers[0].id], env);
  const unused = issued.stdout.trim();
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
  server = await started();
  const after = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8'));
  for (const k of ['projectId', 'ak', 'sk', 'user', 'password']) assert.equal(after[k], before[k], k);
  assert.deepEqual(after.servers.map((s: { id: string }) => s.id), before.servers.map((s: { id: string }) => s.id));
  // The old URL's host:port may have changed (port 0 here); its token is what must survive.
  const token = new URL(unused).searchParams.get('token')!;
  const fresh = new URL(printedUrl(server.stdout()));
  fresh.searchParams.set('token', token);
  const c = await openConsole(fresh.toString());
  assert.equal(c.client.name, 'demo-web-01');
  c.ws.close();
});
