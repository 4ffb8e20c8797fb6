/** The real binary: SIGTERM stops accepting, tells each client why, drains, exits 0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { consoleUrlFrom, seedWithCli, startCli } from '../../helpers/cli.js';
import { openConsole } from '../../helpers/console-client.js';
import { http } from '../../helpers/signed-fetch.js';
import { tempDir } from '../../helpers/stack.js';

test('SIGTERM: /readyz answers 503 on both listeners while sessions drain, then clients are told why (4204), exit code 0', async () => {
  const vnc = new DemoVncServer({ name: 'drain', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_LOG_LEVEL: 'warn' };
  try {
    const seeded = await seedWithCli(env, port);
    const server = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], { ...env, ECS_CONSOLE_PROXY_DRAIN_SECONDS: '2' });
    const c = await openConsole(await consoleUrlFrom(server.apiUrl, seeded));
    await c.client.waitUntil(() => c.client.updateCount > 0);

    assert.equal((await http('GET', `${server.proxyUrl}/readyz`)).status, 200);
    const t0 = Date.now();
    server.child.kill('SIGTERM');
    // Load balancers see the node leave before its listeners close: both still answer, with 503.
    const readiness = async (url: string): Promise<number> => {
      for (;;) {
        const r = await http('GET', `${url}/readyz`);
        if (r.status !== 200) return r.status;
      }
    };
    assert.equal(await readiness(server.proxyUrl), 503);
    assert.equal(await readiness(server.apiUrl), 503);
    assert.equal((await http('GET', `${server.proxyUrl}/readyz`)).json.status, 'draining');
    const closed = await c.closed;
    assert.equal(closed.code, CloseCode.ShuttingDown);
    assert.match(closed.reason, /shutting down/);
    assert.equal(await server.exited, 0);
    assert.ok(Date.now() - t0 < 8000);
  } finally {
    await vnc.close();
  }
});
