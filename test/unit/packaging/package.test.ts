/**
 * The package as npm sees it: what `npm pack` puts in the tarball, engines that hold on every
 * Node version we claim, and the pinned dependency versions doing what the code needs on Node 20.
 * (test/system/installed-package.test.ts installs the tarball and runs it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { tempDir } from '../../helpers/stack.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const require = createRequire(import.meta.url);
const semver = require('semver') as { satisfies(version: string, range: string): boolean };

/** The oldest release of each major we claim (package.json engines), and a recent one. */
const NODE_VERSIONS = ['20.10.0', '20.19.5', '22.0.0', '22.21.0', '24.0.0', '24.11.0'];

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err }));
  });
}

test('our engines range admits every Node version we claim', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  for (const v of NODE_VERSIONS) assert.ok(semver.satisfies(v, pkg.engines.node), `package.json engines ${pkg.engines.node} excludes Node ${v}`);
});

test('every runtime dependency npm ci installs admits Node 20, 22 and 24 (no EBADENGINE)', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; version?: string; engines?: { node?: string } | string[] }> };
  const bad: string[] = [];
  let checked = 0;
  for (const [path, meta] of Object.entries(lock.packages)) {
    if (path === '' || meta.dev) continue;
    checked++;
    const range = Array.isArray(meta.engines) ? undefined : meta.engines?.node;
    if (!range) continue;
    for (const v of NODE_VERSIONS) if (!semver.satisfies(v, range)) bad.push(`${path}@${meta.version} wants node ${range} (not ${v})`);
  }
  assert.ok(checked > 50, `only ${checked} runtime packages in the lockfile`);
  assert.deepEqual(bad, []);
});

test('fastify\'s inject with cookies works with the pinned light-my-request and cookie 1 (the path cookie 2 was pulled in for)', async () => {
  const app = Fastify();
  app.get('/c', async (req) => ({ cookie: req.headers.cookie ?? null }));
  try {
    const r = await app.inject({ method: 'GET', url: '/c', cookies: { a: 'x y', b: '2' } });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { cookie: 'a=x%20y; b=2' });
  } finally {
    await app.close();
  }
});

test('npm pack: compiled code, the page, the noVNC files it serves, the docs and the unit; no TypeScript, tests, maps or benchmarks', async () => {
  const r = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
  assert.equal(r.code, 0, r.err);
  const listed = new Set((JSON.parse(r.out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  for (const must of ['package.json', 'README.md', 'SECURITY.md', 'dist/src/main.js', 'dist/src/app.js', 'docs/deploy.md', 'docs/config.md', 'deploy/ecs-console.service']) {
    assert.ok(listed.has(must), `${must} is not in the package`);
  }
  // Every file of the page and every noVNC module the proxy serves (src/web/static-handler.ts).
  for (const f of files(join(ROOT, 'web'))) assert.ok(listed.has(relative(ROOT, f)), `${relative(ROOT, f)} is not in the package`);
  const novnc = join(ROOT, 'node_modules', '@novnc', 'novnc');
  for (const top of ['core', 'vendor']) {
    for (const f of files(join(novnc, top))) assert.ok(listed.has(relative(ROOT, f)), `${relative(ROOT, f)} (served by the proxy) is not in the package`);
  }
  // Every compiled module of src/ (the command must not miss one).
  for (const f of files(join(ROOT, 'src'))) {
    const js = relative(ROOT, f).replace(/^src\//, 'dist/src/').replace(/\.ts$/, '.js');
    assert.ok(listed.has(js), `${js} is not in the package`);
  }
  const unwanted = [...listed].filter((p) => /\.ts$|\.map$|^dist\/(test|bench)\/|^test\/|^bench\/|^src\/|tsconfig|^scripts\/|^\.ci\//.test(p));
  assert.deepEqual(unwanted, []);
});

test('building in a checkout installed without development dependencies says what to do instead', async () => {
  const dir = tempDir();
  copyFileSync(join(ROOT, 'scripts', 'build.mjs'), join(dir, 'build.mjs'));
  const r = await run(process.execPath, [join(dir, 'build.mjs')], dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /TypeScript is a development dependency and was not installed \(--omit=dev\)/);
  assert.match(r.err, /npm install -g \.\/ecs-console-<version>\.tgz --omit=dev/);
});
