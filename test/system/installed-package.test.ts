/**
 * The package as a user installs it: `npm pack`, then `npm install -g --prefix <empty> <tarball>
 * --omit=dev` from the npm registry; the installed `ecs-console` runs the demo (its console
 * opened in Chromium), admin commands and `serve`; the systemd unit verifies against it; SIGHUP
 * and SIGTERM reach the installed command's own process (no npm in between): certificates
 * reload under a live console, and the drain lets it finish.
 *
 * Needs the npm registry, Chromium, openssl, systemd-analyze (Debian package systemd) and script
 * (bsdutils). GitHub, where better-sqlite3's prebuilt binaries live, is not reachable here: the
 * binary this checkout built for this Node is put where better-sqlite3's installer (prebuild-
 * install) looks for a download it made before, so the install takes seconds instead of a
 * two-minute compile. A missing or mismatching one (another better-sqlite3 version was resolved)
 * falls back to compiling, which is slower but tests the same.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { request as httpsRequest } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DemoVncServer } from '../../src/demo/index.js';
import { CloseCode } from '../../src/proxy/close-codes.js';
import { makeCert, servedFingerprint } from '../helpers/certs.js';
import { launchBrowser, canvasSize, waitForState, type BrowserHarness } from '../helpers/browser.js';
import { consoleUrlFrom, type CliSeed } from '../helpers/cli.js';
import { openConsole, openWs, wsUrlOf } from '../helpers/console-client.js';
import { http } from '../helpers/signed-fetch.js';
import { requireBinary } from '../helpers/real-vnc.js';
import { tempDir } from '../helpers/stack.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const require = createRequire(import.meta.url);
const semver = require('semver') as { satisfies(version: string, range: string): boolean };
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

let work = '';
let bin = '';
let installed = '';
let installOutput = '';
let browser: BrowserHarness | null = null;
const children: ChildProcess[] = [];

interface Run {
  code: number;
  out: string;
  err: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: opts.cwd ?? work, env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 300_000 },
      (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err }));
    child.stdin?.end(opts.input ?? '');
  });
}

/** The installed command, run to completion. */
const cli = (args: string[], env: Record<string, string>, input?: string): Promise<Run> => run(bin, args, { env, ...(input !== undefined ? { input } : {}) });

interface Started {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  apiUrl: string;
  proxyUrl: string;
}

/** Starts the installed command (the file npm linked, as a service manager would) and waits for its addresses. */
function start(args: string[], env: Record<string, string>, cwd = work): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const timer = setTimeout(() => reject(new Error(`did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const api = /API on (https?:\S+)/.exec(err)?.[1];
      const proxy = /console proxy on (https?:\S+)/.exec(err)?.[1];
      if (api && proxy) {
        clearTimeout(timer);
        resolve({ child, out: () => out, err: () => err, exited, apiUrl: api, proxyUrl: proxy });
      }
    });
    void exited.then((c) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${c} before starting: ${err}`));
    });
  });
}

async function until(what: string, predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  assert.ok(predicate(), what);
}

const jsonLines = (s: Started): Array<Record<string, unknown>> => s.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

/** Where prebuild-install looks for a download it made before: <npm cache>/_prebuilds/<sha512(url)[0:6]>-<file name>. */
function seedPrebuild(cache: string): void {
  const pkgJson = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string };
  const file = `better-sqlite3-v${pkgJson.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const url = `https://github.com/WiseLibs/better-sqlite3/releases/download/v${pkgJson.version}/${file}`;
  const stage = join(work, 'prebuild');
  mkdirSync(join(stage, 'build', 'Release'), { recursive: true });
  copyFileSync(join(ROOT, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'), join(stage, 'build', 'Release', 'better_sqlite3.node'));
  mkdirSync(join(cache, '_prebuilds'), { recursive: true });
  const digest = createHash('sha512').update(url).digest('hex').slice(0, 6);
  execFileSync('tar', ['czf', join(cache, '_prebuilds', `${digest}-${file.replace(/[^a-zA-Z0-9.]+/g, '-')}`), '-C', stage, 'build']);
}

before(async () => {
  requireBinary('/usr/bin/openssl', 'openssl');
  requireBinary('/usr/bin/systemd-analyze', 'systemd');
  requireBinary('/usr/bin/script', 'bsdutils');
  work = tempDir('ecs-console-package-');
  const t0 = Date.now();
  const pack = await run('npm', ['pack', '--pack-destination', work], { cwd: ROOT });
  assert.equal(pack.code, 0, pack.err);
  const tarball = join(work, `${PKG.name}-${PKG.version}.tgz`);
  assert.ok(existsSync(tarball), `no ${tarball}: ${pack.out}`);
  const t1 = Date.now();
  const cache = join(work, 'npm-cache');
  seedPrebuild(cache);
  // npm 11 asks which dependencies may run install scripts; older npm has no such option.
  const allow = (await run('npm', ['install-scripts', '--help'])).code === 0 ? ['--allow-scripts=better-sqlite3'] : [];
  const install = await run('npm', ['install', '-g', '--prefix', join(work, 'prefix'), '--cache', cache, tarball, '--omit=dev', ...allow]);
  installOutput = install.out + install.err;
  assert.equal(install.code, 0, installOutput);
  bin = join(work, 'prefix', 'bin', 'ecs-console');
  installed = join(work, 'prefix', 'lib', 'node_modules', 'ecs-console');
  process.stderr.write(`# npm pack ${((t1 - t0) / 1000).toFixed(1)} s, npm install -g ${((Date.now() - t1) / 1000).toFixed(1)} s\n`);
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await browser?.close();
});

test('the install warns about nothing (no EBADENGINE) and gives an ecs-console command of this version', async () => {
  assert.doesNotMatch(installOutput, /EBADENGINE/);
  assert.doesNotMatch(installOutput, /npm warn/i, installOutput);
  assert.ok(statSync(bin).isFile());
  const v = await cli(['--version'], {});
  assert.equal(v.out.trim(), PKG.version);
});

test('the installed tree: no TypeScript, test tools or SDKs; nothing but better-sqlite3 builds; every package admits Node 20, 22 and 24', () => {
  const modules = join(installed, 'node_modules');
  const packages: Array<{ dir: string; json: { name: string; version: string; scripts?: Record<string, string>; engines?: { node?: string } } }> = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name.startsWith('@')) walk(p);
      else if (existsSync(join(p, 'package.json'))) {
        packages.push({ dir: p, json: JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')) });
        if (existsSync(join(p, 'node_modules'))) walk(join(p, 'node_modules'));
      }
    }
  };
  walk(modules);
  assert.ok(packages.length > 50);
  const names = new Set(packages.map((p) => p.json.name));
  for (const dev of ['typescript', 'playwright-core', '@huaweicloud/huaweicloud-sdk-core', '@huaweicloud/huaweicloud-sdk-ecs', '@huaweicloud/huaweicloud-sdk-iam', 'fast-check', '@types/node']) {
    assert.ok(!names.has(dev), `${dev} was installed`);
  }
  for (const must of ['better-sqlite3', 'fastify', 'pino-pretty', '@novnc/novnc', 'pngjs', 'jpeg-js', '@xterm/xterm']) assert.ok(names.has(must), `${must} is missing`);
  const building = packages.filter((p) => ['preinstall', 'install', 'postinstall'].some((s) => p.json.scripts?.[s]) || existsSync(join(p.dir, 'binding.gyp'))).map((p) => p.json.name);
  assert.deepEqual(building, ['better-sqlite3']);
  const bad = packages.flatMap((p) => ['20.10.0', '22.0.0', '24.0.0'].filter((v) => p.json.engines?.node && !semver.satisfies(v, p.json.engines.node)).map((v) => `${p.json.name}@${p.json.version} (${p.json.engines!.node}) excludes ${v}`));
  assert.deepEqual(bad, []);
  // What the package itself holds: compiled code and no TypeScript.
  assert.ok(existsSync(join(installed, 'dist', 'src', 'main.js')));
  assert.ok(!existsSync(join(installed, 'src')) && !existsSync(join(installed, 'test')) && !existsSync(join(installed, 'dist', 'test')));
});

test('systemd-analyze verify accepts the unit, with its ExecStart pointing at the installed command', async () => {
  const unitDir = join(work, 'unit');
  mkdirSync(unitDir, { recursive: true });
  const unit = readFileSync(join(installed, 'deploy', 'ecs-console.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/ecs-console serve$/m);
  writeFileSync(join(unitDir, 'ecs-console.service'), unit.replace(/^ExecStart=\/usr\/local\/bin\/ecs-console/m, `ExecStart=${bin}`));
  const r = await run('systemd-analyze', ['verify', join(unitDir, 'ecs-console.service')]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err.trim(), '', `warnings: ${r.err}`);
  const sec = await run('systemd-analyze', ['security', '--offline=yes', join(unitDir, 'ecs-console.service')]);
  const level = Number(/Overall exposure level for ecs-console\.service: ([\d.]+)/.exec(sec.out)?.[1]);
  assert.ok(level <= 2.5, `exposure ${level}: ${sec.out.slice(-400)}`);
});

test('the demo from the installed command: its console in Chromium, and an admin command on its store', async () => {
  const cwd = join(work, 'demo');
  mkdirSync(cwd);
  const demo = await start(['serve', '--demo', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], { ECS_CONSOLE_LOG_LEVEL: 'warn' }, cwd);
  await until('the banner', () => /Stop with Ctrl\+C/.test(demo.out()));
  const url = /Open this console now.*\n\s+(http\S+)/.exec(demo.out())![1]!;
  browser = await launchBrowser();
  const o = await browser.open(url);
  assert.equal((await waitForState(o.page, ['connected', 'failed'], 20_000)).state, 'connected');
  const size = await canvasSize(o.page);
  assert.ok(size.width > 0 && size.height > 0);
  assert.deepEqual(o.errors, []);
  const list = await run(bin, ['server', 'list', '--data-dir', join(cwd, 'demo-data'), '--json'], { cwd });
  assert.equal(list.code, 0, list.err);
  assert.deepEqual((JSON.parse(list.out) as Array<{ name: string }>).map((s) => s.name).sort(), ['demo-batch-01', 'demo-db-01', 'demo-web-01']);
  await o.close();
  demo.child.kill('SIGTERM');
  assert.equal(await demo.exited, 0);
});

/** GET /readyz on a TLS listener of this machine. */
function readyz(port: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end();
  });
}

const accepts = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = tcpConnect(port, '127.0.0.1', () => {
    s.destroy();
    resolve(true);
  });
  s.once('error', () => resolve(false));
});

test('SIGHUP and SIGTERM to the installed command\'s process: the certificate reloads under a live console; the drain lets it finish, then the process exits 0', async () => {
  const vnc = new DemoVncServer({ name: 'installed', width: 160, height: 100 });
  const { port: vncPort } = await vnc.listen(0, '127.0.0.1');
  const dir = join(work, 'signals');
  mkdirSync(dir);
  const env = { ECS_CONSOLE_DATA_DIR: join(dir, 'data'), ECS_CONSOLE_LOG_FORMAT: 'json', ECS_CONSOLE_LOG_LEVEL: 'info' };
  try {
    // Admin commands from the installed command.
    const must = (r: Run): Run => {
      assert.equal(r.code, 0, r.err);
      return r;
    };
    must(await cli(['init'], env));
    const projectId = (JSON.parse(must(await cli(['project', 'create', '--name', 'p1', '--domain', 'd', '--json'], env)).out) as { id: string }).id;
    must(await cli(['user', 'create', '--domain', 'd', '--name', 'u', '--password-stdin'], env, 'password-123\n'));
    const serverId = (JSON.parse(must(await cli(['server', 'add', '--project', projectId, '--name', 'web', '--host', '127.0.0.1', '--port', String(vncPort), '--json'], env)).out) as { id: string }).id;
    const seeded: CliSeed = { projectId, serverId, password: 'password-123' };

    const first = makeCert(dir, 'first');
    const live = { cert: join(dir, 'live-cert.pem'), key: join(dir, 'live-key.pem') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const server = await start(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], {
      ...env, ECS_CONSOLE_PROXY_TLS_CERT: live.cert, ECS_CONSOLE_PROXY_TLS_KEY: live.key, ECS_CONSOLE_PROXY_DRAIN_SECONDS: '3',
    });
    // The process the service manager signals is node itself: no npm or shell in between.
    assert.equal(readlinkSync(`/proc/${server.child.pid}/exe`), process.execPath);
    const proxyPort = Number(new URL(server.proxyUrl).port);
    assert.equal(await servedFingerprint(proxyPort), new X509Certificate(readFileSync(first.cert)).fingerprint256);

    const c = await openConsole(await consoleUrlFrom(server.apiUrl, seeded));
    await c.client.waitUntil(() => c.client.updateCount > 0);
    assert.deepEqual(await readyz(proxyPort), { status: 200, body: { status: 'ready' } });

    const second = makeCert(dir, 'second');
    copyFileSync(second.key, live.key);
    copyFileSync(second.cert, live.cert);
    server.child.kill('SIGHUP');
    await until('reloaded', () => jsonLines(server).some((l) => l['msg'] === 'configuration reloaded'));
    assert.equal(await servedFingerprint(proxyPort), new X509Certificate(readFileSync(second.cert)).fingerprint256, 'a new connection sees the new certificate');
    const update = c.client.waitForUpdate();
    c.client.requestUpdate(false);
    await update;

    const closed = new Promise<{ code: number; at: number }>((resolve) => c.ws.once('close', (code) => resolve({ code, at: Date.now() })));
    const termAt = Date.now();
    server.child.kill('SIGTERM');
    await until('draining', () => jsonLines(server).some((l) => l['msg'] === 'stopping'));
    // While it drains: the live console still works; the listeners are still open and say 503
    // (load balancers stop sending first); a new console is refused 503.
    const during = c.client.waitForUpdate();
    c.client.requestUpdate(false);
    await during;
    assert.deepEqual(await readyz(proxyPort), { status: 503, body: { status: 'draining' } });
    assert.equal((await http('GET', `${server.apiUrl}/readyz`)).status, 503);
    const refused = await openWs(wsUrlOf(`${server.proxyUrl}/vnc_auto.html?token=00000000-0000-4000-8000-000000000000`));
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.equal(refused.status, 503);
    const end = await closed;
    assert.equal(end.code, CloseCode.ShuttingDown);
    assert.ok(end.at - termAt >= 2500, `the console was closed ${end.at - termAt} ms after SIGTERM, before its drain time`);
    assert.equal(await server.exited, 0);
    assert.equal(await accepts(proxyPort), false, 'the proxy port still accepts connections');
    assert.equal(await accepts(Number(new URL(server.apiUrl).port)), false, 'the API port still accepts connections');
    assert.ok(!existsSync(`/proc/${server.child.pid}`), 'the process is gone');
  } finally {
    await vnc.close();
  }
});

test('on a terminal the installed command logs pretty lines by default; --log-format json keeps JSON', async () => {
  const dir = join(work, 'tty');
  const cmd = (extra: string): string => `exec timeout -s TERM 6 ${bin} serve --data-dir ${dir} --api-listen 127.0.0.1:0 --proxy-listen 127.0.0.1:0 ${extra}`;
  const env = { ECS_CONSOLE_PROXY_DRAIN_SECONDS: '0', ECS_CONSOLE_LOG_FORMAT: '' };
  // script(1) gives the command a pseudo-terminal as its standard output.
  const pretty = await run('script', ['-qfec', cmd(''), '/dev/null'], { env });
  const text = pretty.out.replace(/\x1b\[[0-9;]*m/g, '');
  assert.match(text, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: API listening \{/m);
  assert.doesNotMatch(text, /^\{"level"/m);
  const json = await run('script', ['-qfec', cmd('--log-format json'), '/dev/null'], { env });
  assert.match(json.out, /^\{"level":"info",.*"msg":"API listening"/m);
  assert.ok(existsSync(join(dir, 'ecs-console.db')));
});

test('the package\'s own package.json has no lifecycle script an install would list or run', () => {
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts[s], undefined, `scripts.${s} in the package`);
  assert.equal(pkg.scripts['postprepare'], 'node scripts/build.mjs', 'the checkout still builds on npm ci');
});
