/**
 * `ecs-console backup` while a real `serve` opens and closes 200 console sessions, then
 * `restore` into a fresh data directory: every access key (its secret key opens with the master
 * key), every server (its console target and VNC password) and every token used before the
 * backup started is there, and `serve` starts on the restored store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { DemoVncServer } from '../../src/demo/index.js';
import { silentLogger } from '../../src/log.js';
import { consoleTokenHash } from '../../src/tokens/console-token-service.js';
import { runCli, startCli, startOrExit, type CliResult } from '../helpers/cli.js';
import { openConsole } from '../helpers/console-client.js';
import { signedHttp } from '../helpers/signed-fetch.js';
import { tempDir } from '../helpers/stack.js';

const SESSIONS = 200;
const CONCURRENCY = 10;

test('backup while 200 sessions open and close, restore: every key, server and used token is there', async () => {
  const vnc = new DemoVncServer({ name: 'bk', width: 160, height: 100 });
  const vncPw = new DemoVncServer({ name: 'bk-pw', width: 160, height: 100, password: 'vnc-pw-1' });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const { port: pwPort } = await vncPw.listen(0, '127.0.0.1');
  const dir = tempDir('ecs-backup-');
  const dataDir = join(dir, 'data');
  const env = { ECS_CONSOLE_DATA_DIR: dataDir, ECS_CONSOLE_LOG_LEVEL: 'warn' };
  const must = (r: CliResult): CliResult => {
    assert.equal(r.code, 0, r.stderr);
    return r;
  };
  must(await runCli(['init'], env));

  // Keys and servers, made through the services on the same store (as the CLI would, faster).
  const seeded = await createServices(loadConfig({ flags: { dataDir }, env: {} }), { logger: silentLogger() });
  const keys: Array<{ ak: string; sk: string; projectId: string }> = [];
  const servers: Array<{ id: string; port: number; password: string | null }> = [];
  try {
    const p = await seeded.identity.createProject({ name: 'p1', domain: 'acme' });
    const user = await seeded.identity.createUser({ domain: 'acme', name: 'alice', password: 'Secr3t-passw0rd' });
    for (let i = 0; i < 40; i++) {
      const k = await seeded.identity.createAccessKey({ userId: user.id, projectId: p.id });
      keys.push({ ak: k.ak, sk: k.sk, projectId: p.id });
    }
    for (let i = 0; i < 20; i++) {
      const withPw = i % 4 === 0;
      const s = await seeded.inventory.addServer({
        projectId: p.id, name: `web-${i}`,
        console: withPw ? { host: '127.0.0.1', port: pwPort, auth: 'vnc-password', password: 'vnc-pw-1' } : { host: '127.0.0.1', port, auth: 'none', password: null },
      });
      servers.push({ id: s.id, port: withPw ? pwPort : port, password: withPw ? 'vnc-pw-1' : null });
    }
  } finally {
    await seeded.close();
  }

  const server = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env);
  const used: string[] = [];
  let usedBeforeBackup: string[] = [];
  let inFlightAtBackup = 0;
  let backup: Promise<CliResult> | null = null;
  const backupFile = join(dir, 'backup.db');
  try {
    let next = 0;
    let done = 0;
    let inFlight = 0;
    const one = async (i: number): Promise<void> => {
      const key = keys[i % keys.length]!;
      const target = servers[i % servers.length]!;
      const r = await signedHttp('POST', `${server.apiUrl}/v1/${key.projectId}/cloudservers/${target.id}/remote_console`,
        '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: key.ak, sk: key.sk, projectId: key.projectId });
      assert.equal(r.status, 200, r.text);
      const url = r.json.remote_console.url as string;
      const c = await openConsole(url);
      used.push(new URL(url).searchParams.get('token')!);
      c.ws.close();
      await c.closed;
    };
    const worker = async (): Promise<void> => {
      while (next < SESSIONS) {
        const i = next++;
        inFlight++;
        try {
          await one(i);
        } finally {
          inFlight--;
        }
        done++;
        if (done === SESSIONS / 2 && !backup) {
          // Taken while the other workers' sessions are opening and closing.
          usedBeforeBackup = [...used];
          inFlightAtBackup = inFlight;
          backup = runCli(['backup', '--to', backupFile, '--json'], env);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
    assert.ok(backup, 'the backup ran');
    const b = must(await backup);
    assert.ok(inFlightAtBackup > 0, 'sessions were under way when the backup started');
    assert.equal(used.length, SESSIONS);
    const summary = JSON.parse(b.stdout) as { tables: Record<string, number>; keyIds: string[] };
    assert.equal(summary.tables['access_keys'], keys.length);
    assert.equal(summary.tables['servers'], servers.length);
    assert.ok(summary.tables['console_tokens']! >= usedBeforeBackup.length);
    assert.equal(summary.keyIds.length, 1);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }

  // A fresh machine: the master key put back first, then the restore.
  const restoredDir = join(dir, 'restored');
  mkdirSync(restoredDir, { mode: 0o700 });
  copyFileSync(join(dataDir, 'master.key'), join(restoredDir, 'master.key'));
  const renv = { ECS_CONSOLE_DATA_DIR: restoredDir, ECS_CONSOLE_LOG_LEVEL: 'warn' };
  must(await runCli(['restore', '--from', backupFile], renv));

  const restored = await createServices(loadConfig({ flags: { dataDir: restoredDir }, env: {} }), { logger: silentLogger() });
  try {
    for (const k of keys) {
      const row = await restored.stores.identity.getAccessKey(k.ak);
      assert.ok(row, `access key ${k.ak} missing`);
      assert.equal(restored.box.open(row.skSealed, `sk:${k.ak}`), k.sk);
    }
    for (const s of servers) {
      const row = await restored.inventory.getServer(s.id);
      assert.equal(row.console.kind === 'static' ? row.console.port : null, s.port);
      assert.equal(restored.inventory.resolveTarget(row).password, s.password);
    }
    for (const t of usedBeforeBackup) {
      const row = await restored.stores.consoleTokens.getConsoleToken(consoleTokenHash(t));
      assert.ok(row, 'a token used before the backup is missing');
      assert.notEqual(row.consumedAt, null, 'a token used before the backup is not marked used');
    }
    assert.ok(usedBeforeBackup.length >= SESSIONS / 2);
  } finally {
    await restored.close();
  }
  const again = await startOrExit(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], renv);
  assert.ok(again.started, again.stderr);
  await vnc.close();
  await vncPw.close();
});
