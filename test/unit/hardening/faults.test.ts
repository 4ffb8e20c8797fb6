/** Faults: the database locked by another process; SIGTERM with API calls in flight. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import Database from 'better-sqlite3';
import { runCli, startCli } from '../../helpers/cli.js';
import { signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, tempDir } from '../../helpers/stack.js';

const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';

test('database locked by another process: a clear 500 within the busy timeout, nothing lost, recovery after', async () => {
  const stack = await startStack({ options: { sqliteBusyTimeoutMs: '300' } });
  try {
    const s = await seed(stack.app);
    const url = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;
    const ok = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(ok.status, 200);
    const committed = new URL(ok.json.remote_console.url).searchParams.get('token')!;
    const other = new Database(stack.config.store.slice('sqlite:'.length));
    other.exec('BEGIN EXCLUSIVE');
    try {
      const t0 = Date.now();
      const r = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
      assert.equal(r.status, 500);
      assert.equal(r.json.error.code, 'Common.0001');
      assert.ok(Date.now() - t0 < 3000, 'fails within about the busy timeout');
      const ready = await fetch(`${stack.apiUrl}/readyz`);
      assert.equal(ready.status, 503, 'not ready while the database is locked');
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    const again = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(again.status, 200, 'recovers by itself');
    assert.equal((await stack.app.services.consoleTokens.peek(committed)).state, 'valid', 'the committed token is still there');
  } finally {
    await stack.stop();
  }
});

test('SIGTERM with an API call in flight: the call completes, the process exits 0', async () => {
  const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_LOG_LEVEL: 'warn', ECS_CONSOLE_PROXY_DRAIN_SECONDS: '0' };
  assert.equal((await runCli(['init'], env)).code, 0);
  const p = JSON.parse((await runCli(['project', 'create', '--name', 'p', '--domain', 'd', '--json'], env)).stdout).id as string;
  await runCli(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], env, 'password-123\n');
  const key = JSON.parse((await runCli(['key', 'create', '--domain', 'd', '--user', 'u', '--project', p, '--json'], env)).stdout) as { ak: string; sk: string };
  const srv = JSON.parse((await runCli(['server', 'add', '--project', p, '--name', 'w', '--host', '127.0.0.1', '--port', '5900', '--json'], env)).stdout).id as string;
  const server = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env);
  const url = new URL(`${server.apiUrl}/v1/${p}/cloudservers/${srv}/remote_console`);
  const { signRequest } = await import('../../../src/identity/sdk-hmac-signer.js');
  const headers = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: BODY }, key.ak, key.sk, Date.now());
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(BODY.length) } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    // Half the body now, SIGTERM, then the rest: the request is in flight when the signal lands.
    req.write(BODY.slice(0, 20));
    setTimeout(() => {
      server.child.kill('SIGTERM');
      setTimeout(() => req.end(BODY.slice(20)), 300);
    }, 200);
  });
  const r = await reply;
  assert.equal(r.status, 200, r.body);
  assert.match(JSON.parse(r.body).remote_console.url, /vnc_auto\.html\?token=/);
  assert.equal(await server.exited, 0);
});
