/**
 * The demo does not leak into production: `serve --demo` keeps its objects in its own data
 * directory, a real `serve` does not accept the credentials the demo printed, refuses a data
 * directory that holds the demo, and the demo refuses a real store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, startCli, startOrExit, type RunningServer } from '../../helpers/cli.js';
import { remoteConsole, sdkClient, sdkFailure } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { tempDir } from '../../helpers/stack.js';

const LISTEN = ['--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'];
const env = { ECS_CONSOLE_LOG_LEVEL: 'warn', ECS_CONSOLE_DATA_DIR: '', ECS_CONSOLE_STORE: '', ECS_CONSOLE_CONFIG: '' };

async function stop(s: RunningServer): Promise<void> {
  s.child.kill('SIGTERM');
  assert.equal(await s.exited, 0);
}

test('npm start\'s demo keeps to ./demo-data; a real serve in the same directory accepts none of its printed credentials', async () => {
  const cwd = tempDir();
  const demo = await startCli(['serve', '--demo', ...LISTEN], env, cwd);
  for (let i = 0; i < 400 && !/Stop with Ctrl\+C/.test(demo.stdout()); i++) await new Promise((r) => setTimeout(r, 25));
  await stop(demo);
  const d = JSON.parse(readFileSync(join(cwd, 'demo-data', 'demo.json'), 'utf8')) as { projectId: string; ak: string; sk: string; domain: string; user: string; password: string; servers: Array<{ id: string }> };
  assert.ok(!existsSync(join(cwd, 'data')), 'the demo wrote into ./data');
  assert.match(demo.stdout(), new RegExp(`keeps its own store and master key in ${join(cwd, 'demo-data').replace(/[/.]/g, '\\$&')}`));
  assert.match(demo.stdout(), /console-url --server \S+ --data-dir \S+demo-data --open/);

  const real = await startCli(['serve', ...LISTEN], env, cwd);
  try {
    const sdk = await sdkFailure(remoteConsole(sdkClient(real.apiUrl, d.ak, d.sk, d.projectId), d.servers[0]!.id));
    assert.equal(sdk.httpStatusCode, 401);
    const iam = await http('POST', `${real.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: d.user, password: d.password, domain: { name: d.domain } } } }, scope: { project: { id: d.projectId } } },
    }));
    assert.equal(iam.status, 401);
  } finally {
    await stop(real);
  }
  assert.ok(existsSync(join(cwd, 'data', 'ecs-console.db')), 'the real serve runs on ./data');
});

test('a real serve refuses a data directory that holds the demo; the demo refuses a real store', async () => {
  const dir = tempDir();
  const demoDir = join(dir, 'demo');
  const demo = await startCli(['serve', '--demo', '--data-dir', demoDir, ...LISTEN], env);
  for (let i = 0; i < 400 && !/Stop with Ctrl\+C/.test(demo.stdout()); i++) await new Promise((r) => setTimeout(r, 25));
  await stop(demo);
  const d = JSON.parse(readFileSync(join(demoDir, 'demo.json'), 'utf8')) as { ak: string };

  for (const role of ['serve', 'api', 'proxy']) {
    const r = await startOrExit([role, '--data-dir', demoDir, ...LISTEN], env);
    assert.equal(r.started, false, `${role} started on the demo's store`);
    assert.equal(r.code, 4, `${role}: ${r.stderr}`);
    assert.match(r.stderr, /holds the demo's objects .*demo\.json.*access key/);
    assert.ok(r.stderr.includes(d.ak), 'names the demo key');
  }

  const realDir = join(dir, 'real');
  assert.equal((await runCli(['init', '--data-dir', realDir], env)).code, 0);
  assert.equal((await runCli(['project', 'create', '--name', 'p1', '--domain', 'acme', '--data-dir', realDir], env)).code, 0);
  const intoReal = await startOrExit(['serve', '--demo', '--data-dir', realDir, ...LISTEN], env);
  assert.equal(intoReal.started, false, 'the demo started on a real store');
  assert.equal(intoReal.code, 4, intoReal.stderr);
  assert.match(intoReal.stderr, /--demo would add its printed credentials .* holds 1 project/);
  assert.ok(!existsSync(join(realDir, 'demo.json')));

  const pg = await startOrExit(['serve', '--demo', '--store', 'postgres://nobody@127.0.0.1:1/none', ...LISTEN], env);
  assert.equal(pg.code, 2, pg.stderr);
  assert.match(pg.stderr, /--demo runs on its own SQLite store/);
});
