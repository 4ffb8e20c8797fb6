/** The real binary: SIGTERM stops accepting, tells each client why, drains, exits 0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { runCli, startCli } from '../../helpers/cli.js';
import { openConsole } from '../../helpers/console-client.js';
import { http } from '../../helpers/signed-fetch.js';
import { tempDir } from '../../helpers/stack.js';

test('SIGTERM: clients told why (4204), exit code 0', async () => {
  const vnc = new DemoVncServer({ name: 'drain', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_LOG_LEVEL: 'warn' };
  try {
    const p = await runCli(['project', 'create', '--name', 'p1', '--domain', 'd', '--json'], env);
    assert.equal(p.code, 0, p.stderr);
    const projectId = JSON.parse(p.stdout).id as string;
    assert.equal((await runCli(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], env, 'password-123\n')).code, 0);
    const srv = await runCli(['server', 'add', '--project', projectId, '--name', 'web', '--host', '127.0.0.1', '--port', String(port), '--json'], env);
    assert.equal(srv.code, 0, srv.stderr);
    const serverId = JSON.parse(srv.stdout).id as string;

    const server = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], { ...env, ECS_CONSOLE_PROXY_DRAIN_SECONDS: '1' });
    const tok = await http('POST', `${server.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: 'u', password: 'password-123', domain: { name: 'd' } } } }, scope: { project: { id: projectId } } },
    }));
    assert.equal(tok.status, 201, tok.text);
    const rc = await http('POST', `${server.apiUrl}/v1/${projectId}/cloudservers/${serverId}/remote_console`,
      { 'content-type': 'application/json', 'x-auth-token': String(tok.headers['x-subject-token']) }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');
    assert.equal(rc.status, 200, rc.text);
    const c = await openConsole(rc.json.remote_console.url);
    await c.client.waitUntil(() => c.client.updateCount > 0);

    const t0 = Date.now();
    server.child.kill('SIGTERM');
    const closed = await c.closed;
    assert.equal(closed.code, CloseCode.ShuttingDown);
    assert.match(closed.reason, /shutting down/);
    assert.equal(await server.exited, 0);
    assert.ok(Date.now() - t0 < 8000);
  } finally {
    await vnc.close();
  }
});
