/**
 * From one node to a fleet: `store copy --from sqlite:... --to postgres://...` copies a used
 * SQLite store (keys, servers, tokens, audit, key check) into an empty database, refuses a
 * non-empty one unless told, and an API node and a proxy node started on the copy (with the
 * node's master key) serve the copied keys and servers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DemoVncServer } from '../../src/demo/index.js';
import { consoleUrlFrom, runCli, seedWithCli, startCli, type CliResult } from '../helpers/cli.js';
import { openConsole, openWs, wsUrlOf } from '../helpers/console-client.js';
import pg from 'pg';
import { createTestDatabase } from '../helpers/postgres.js';
import { signedHttp } from '../helpers/signed-fetch.js';
import { tempDir } from '../helpers/stack.js';

const must = (r: CliResult): CliResult => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};

test('store copy SQLite -> PostgreSQL, then a fleet (API node, proxy node) runs on the copy', async () => {
  const vnc = new DemoVncServer({ name: 'copy', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const db = await createTestDatabase();
  const dir = tempDir('ecs-copy-');
  const env = { ECS_CONSOLE_DATA_DIR: join(dir, 'data'), ECS_CONSOLE_LOG_LEVEL: 'warn' };
  try {
    // A single node in use: a key, a server, a used token, audit rows.
    const seeded = await seedWithCli(env, port);
    const key = JSON.parse(must(await runCli(['key', 'create', '--domain', 'd', '--user', 'u', '--project', seeded.projectId, '--json'], env)).stdout) as { ak: string; sk: string };
    const single = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env);
    const usedUrl = await consoleUrlFrom(single.apiUrl, seeded);
    const c = await openConsole(usedUrl);
    c.ws.close();
    await c.closed;
    single.child.kill('SIGTERM');
    assert.equal(await single.exited, 0);

    const copy = must(await runCli(['store', 'copy', '--from', `sqlite:${join(dir, 'data', 'ecs-console.db')}`, '--to', db.url, '--json'], env));
    const out = JSON.parse(copy.stdout) as { tables: Record<string, number>; rows: number };
    assert.equal(out.tables['access_keys'], 1);
    assert.equal(out.tables['servers'], 1);
    assert.equal(out.tables['master_key_checks'], 1);
    assert.ok(out.tables['console_tokens']! >= 1 && out.tables['audit_events']! >= 3);
    // Counted independently, on the target itself.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (const [t, n] of Object.entries(out.tables)) assert.equal((await client.query(`SELECT COUNT(*)::int AS n FROM ${t}`)).rows[0].n, n, t);
    } finally {
      await client.end();
    }

    // A non-empty target is refused, and left as it was; with --replace it is emptied, then copied.
    const again = await runCli(['store', 'copy', '--from', `sqlite:${join(dir, 'data', 'ecs-console.db')}`, '--to', db.url], env);
    assert.equal(again.code, 4, again.stderr);
    assert.match(again.stderr, /^error: the target postgres:\/\/\S+ is not empty \(\d+ \w+.*\); copy into an empty database, or add --replace/);
    const replaced = JSON.parse(must(await runCli(['store', 'copy', '--from', `sqlite:${join(dir, 'data', 'ecs-console.db')}`, '--to', db.url, '--replace', '--json'], env)).stdout) as { tables: Record<string, number> };
    assert.deepEqual(replaced.tables, out.tables);

    // The fleet: nodes on the copy with the single node's master key.
    const fleetEnv = { ECS_CONSOLE_STORE: db.url, ECS_CONSOLE_MASTER_KEY: readFileSync(join(dir, 'data', 'master.key'), 'utf8').trim(), ECS_CONSOLE_DATA_DIR: join(dir, 'fleet'), ECS_CONSOLE_LOG_LEVEL: 'warn' };
    const proxyNode = await startCli(['proxy', '--proxy-listen', '127.0.0.1:0', '--node-id', 'proxy-1'], fleetEnv);
    const apiNode = await startCli(['api', '--api-listen', '127.0.0.1:0', '--node-id', 'api-1', '--public-url', proxyNode.proxyUrl], fleetEnv);
    try {
      // The copied AK/SK signs; the copied server (and its console target) is served; new audit ids follow the copied ones.
      const r = await signedHttp('POST', `${apiNode.apiUrl}/v1/${seeded.projectId}/cloudservers/${seeded.serverId}/remote_console`,
        '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: key.ak, sk: key.sk, projectId: seeded.projectId });
      assert.equal(r.status, 200, r.text);
      const fresh = await openConsole(r.json.remote_console.url as string);
      assert.equal(fresh.client.name, 'web');
      fresh.ws.close();
      await fresh.closed;
      // The copied password user and the token used on the single node: used there, used here.
      assert.ok((await consoleUrlFrom(apiNode.apiUrl, seeded)).startsWith(proxyNode.proxyUrl));
      const reused = await openWs(wsUrlOf(usedUrl.replace(/^http:\/\/[^/]+/, proxyNode.proxyUrl)));
      assert.ok(!reused.ok && reused.status === 401 && /already used/.test(reused.body), 'a used token works again after the copy');
    } finally {
      apiNode.child.kill('SIGTERM');
      proxyNode.child.kill('SIGTERM');
      await Promise.all([apiNode.exited, proxyNode.exited]);
    }
  } finally {
    await vnc.close();
    await db.drop();
  }
});

test('store copy refuses a source that is not SQLite and a target that is not PostgreSQL, with one line each', async () => {
  const dir = tempDir();
  const a = await runCli(['store', 'copy', '--from', 'postgres://u@127.0.0.1:1/x', '--to', 'postgres://u@127.0.0.1:1/y'], { ECS_CONSOLE_DATA_DIR: dir });
  assert.equal(a.code, 2);
  assert.match(a.stderr, /^error: --from must be a SQLite store file/);
  const b = await runCli(['store', 'copy', '--from', `sqlite:${join(dir, 'x.db')}`, '--to', `sqlite:${join(dir, 'y.db')}`], { ECS_CONSOLE_DATA_DIR: dir });
  assert.equal(b.code, 2);
  assert.match(b.stderr, /^error: --to must be a PostgreSQL URL/);
  const c = await runCli(['store', 'copy', '--from', `sqlite:${join(dir, 'missing.db')}`, '--to', 'postgres://u@127.0.0.1:1/y'], { ECS_CONSOLE_DATA_DIR: dir });
  assert.equal(c.code, 3);
  assert.match(c.stderr, /^error: no ecs-console store at sqlite:/);
});
