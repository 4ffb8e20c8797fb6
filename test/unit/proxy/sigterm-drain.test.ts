/** The real binary: SIGTERM stops accepting, tells each client why, drains, exits 0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { consoleUrlFrom, seedWithCli, startCli } from '../../helpers/cli.js';
import { openConsole } from '../../helpers/console-client.js';
import { tempDir } from '../../helpers/stack.js';

test('SIGTERM: clients told why (4204), exit code 0', async () => {
  const vnc = new DemoVncServer({ name: 'drain', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_LOG_LEVEL: 'warn' };
  try {
    const seeded = await seedWithCli(env, port);
    const server = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], { ...env, ECS_CONSOLE_PROXY_DRAIN_SECONDS: '1' });
    const c = await openConsole(await consoleUrlFrom(server.apiUrl, seeded));
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
