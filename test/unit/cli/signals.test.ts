/**
 * The real binary and SIGHUP: the process reloads its log level from the configuration file (and
 * its certificates: test/system/tls) and carries on; live console sessions are not dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { consoleUrlFrom, seedWithCli, startCli, type RunningServer } from '../../helpers/cli.js';
import { openConsole } from '../../helpers/console-client.js';
import { http } from '../../helpers/signed-fetch.js';
import { tempDir } from '../../helpers/stack.js';

/** The JSON log lines the process wrote to stdout so far. */
function logLines(s: RunningServer): Array<Record<string, unknown>> {
  return s.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(predicate(), what);
}

test('SIGHUP: the log level is reloaded from the file; the process and a live console session carry on', async () => {
  const vnc = new DemoVncServer({ name: 'hup', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const dir = tempDir();
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ logLevel: 'warn' }));
  const env = { ECS_CONSOLE_DATA_DIR: join(dir, 'data'), ECS_CONSOLE_CONFIG: file, ECS_CONSOLE_PROXY_DRAIN_SECONDS: '0' };
  try {
    const seeded = await seedWithCli(env, port);
    const server = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env);
    const c = await openConsole(await consoleUrlFrom(server.apiUrl, seeded));
    await c.client.waitUntil(() => c.client.updateCount > 0);
    assert.equal(logLines(server).filter((l) => l['msg'] === 'request').length, 0, 'at warn, no access log');

    writeFileSync(file, JSON.stringify({ logLevel: 'info' }));
    server.child.kill('SIGHUP');
    await until('reload logged', () => logLines(server).some((l) => l['msg'] === 'configuration reloaded' && l['logLevel'] === 'info'));
    assert.equal(server.child.exitCode, null, 'still running');
    assert.equal((await http('GET', `${server.apiUrl}/healthz`)).status, 200);
    await until('access log at info', () => logLines(server).some((l) => l['msg'] === 'request' && l['path'] === '/healthz'));
    const update = c.client.waitForUpdate();
    c.client.requestUpdate(false);
    await update;

    writeFileSync(file, '{"logLevel": "loud"}');
    server.child.kill('SIGHUP');
    await until('bad configuration refused', () => logLines(server).some((l) => l['msg'] === 'reload refused: the configuration is not valid; nothing changed' && /"logLevel"/.test(String(l['error']))));
    const again = c.client.waitForUpdate();
    c.client.requestUpdate(false);
    await again;

    server.child.kill('SIGTERM');
    assert.equal((await c.closed).code, CloseCode.ShuttingDown, 'the session lived until the drain');
    assert.equal(await server.exited, 0);
  } finally {
    await vnc.close();
  }
});
