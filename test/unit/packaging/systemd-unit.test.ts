/**
 * deploy/ecs-console.service says what docs/deploy.md promises: a dedicated user, a state
 * directory that is the data directory, SIGTERM to the main process with time for the drain, an
 * open-file limit that covers the default caps, hardening. (`systemd-analyze verify` runs in
 * test/system/installed-package.test.ts, against the installed command.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../src/config/config.js';
import { openFilesNeeded, parseOpenFilesLimit } from '../../../src/util/open-files.js';
import { MAIN } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/stack.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** `Key=value` lines of the unit, per key (a key may repeat). */
function directives(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of readFileSync(join(ROOT, 'deploy', 'ecs-console.service'), 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('[')) continue;
    const i = line.indexOf('=');
    const k = line.slice(0, i);
    out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
  }
  return out;
}

test('the unit: simple service, dedicated user, state directory as data directory, drain on SIGTERM, reload on SIGHUP, hardening', () => {
  const d = directives();
  const one = (k: string): string => {
    const v = d.get(k);
    assert.ok(v && v.length === 1, `${k}= once`);
    return v[0]!;
  };
  const defaults = loadConfig({ env: {} });
  assert.ok(['simple', 'notify'].includes(one('Type')));
  assert.equal(one('User'), 'ecs-console');
  assert.equal(one('Group'), 'ecs-console');
  assert.equal(one('StateDirectory'), 'ecs-console');
  assert.equal(one('StateDirectoryMode'), '0700');
  assert.ok(d.get('Environment')!.includes('ECS_CONSOLE_DATA_DIR=/var/lib/ecs-console'), 'the data directory is the state directory');
  assert.match(one('ExecStart'), /\/ecs-console serve$/);
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('KillMode'), 'mixed');
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.ok(Number(one('TimeoutStopSec')) >= defaults.proxyDrainSeconds + 30, 'time for the drain and the API to finish');
  assert.ok(Number(one('LimitNOFILE')) >= openFilesNeeded(defaults, 'serve'), `LimitNOFILE below the ${openFilesNeeded(defaults, 'serve')} the default caps need`);
  for (const [k, v] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['PrivateDevices', 'yes'], ['CapabilityBoundingSet', ''], ['UMask', '0077']] as const) {
    assert.equal(one(k), v, `${k}=${v}`);
  }
  assert.equal(d.get('MemoryDenyWriteExecute'), undefined, 'V8 needs writable executable memory');
});

test('open files: what the caps need, and the limit read from /proc/<pid>/limits', () => {
  assert.equal(openFilesNeeded({ proxyMaxSessions: 100, apiMaxConnections: 50 }, 'serve'), 2 * 100 + 1000 + 50 + 256);
  assert.equal(openFilesNeeded({ proxyMaxSessions: 100, apiMaxConnections: 50 }, 'api'), 50 + 256);
  assert.equal(openFilesNeeded({ proxyMaxSessions: 100, apiMaxConnections: 50 }, 'proxy'), 2 * 100 + 1000 + 256);
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n';
  assert.equal(parseOpenFilesLimit(limits), 1024);
  assert.equal(parseOpenFilesLimit(limits.replace('1024 ', 'unlimited ')), null);
  assert.equal(parseOpenFilesLimit('nothing here'), null);
});

test('serve warns at start when the open-file limit is below what its caps need', async () => {
  const dir = tempDir();
  const child = spawn('/bin/bash', ['-c', `ulimit -n 2048 && exec "${process.execPath}" "${MAIN}" serve --api-listen 127.0.0.1:0 --proxy-listen 127.0.0.1:0 --log-format json`], {
    env: { ...process.env, ECS_CONSOLE_DATA_DIR: join(dir, 'data') }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  for (let i = 0; i < 400 && !/console proxy on/.test(err); i++) await new Promise((r) => setTimeout(r, 25));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
  const line = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => /open-file limit/.test(String(l['msg'])));
  assert.ok(line, `no warning in ${out}`);
  assert.equal(line['level'], 'warn');
  assert.equal(line['limit'], 2048);
  assert.equal(line['needed'], openFilesNeeded(loadConfig({ env: {} }), 'serve'));
});
