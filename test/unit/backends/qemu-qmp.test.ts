/**
 * The qemu-qmp driver through the proxy, against a stand-in QEMU (test/helpers/fake-qemu.ts: the
 * demo VNC server whose one password the QMP monitor sets and expires). Real QEMU:
 * test/system/qemu-qmp.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { consoleFailure, openConsole } from '../../helpers/console-client.js';
import { startFakeQemu, type FakeQemu } from '../../helpers/fake-qemu.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

/** Every byte of the store's files (database, WAL). */
function storeBytes(dataDir: string): Buffer {
  return Buffer.concat(readdirSync(dataDir).filter((f) => f.startsWith('ecs-console.db')).map((f) => readFileSync(join(dataDir, f))));
}

describe('qemu-qmp targets (a stand-in QEMU)', () => {
  let qemu: FakeQemu;
  let stack: Stack;
  let s: Seed;
  const url = async (serverId: string): Promise<string> =>
    (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), serverId)).remote_console.url;
  const addVm = async (name: string, qmp: string) => (await stack.app.services.inventory.addServer({
    projectId: s.projectId, name, console: { kind: 'qemu-qmp', host: '127.0.0.1', port: qemu.vncPort, qmp },
  })).id;

  before(async () => {
    qemu = await startFakeQemu();
    stack = await startStack({ options: { proxyMaxSessionsPerServer: 30, backendManagementTimeoutSeconds: 1 } });
    s = await seed(stack.app, { host: '127.0.0.1', port: qemu.vncPort });
  });
  after(async () => {
    await stack.stop();
    await qemu.stop();
  });

  test('20 simultaneous sessions to one VM all connect, each with its own password, expired at once, never stored or logged', async () => {
    const vm = await addVm('vm-20', qemu.qmpPath);
    qemu.passwords.length = 0;
    qemu.expiries.length = 0;
    const urls = await Promise.all(Array.from({ length: 20 }, () => url(vm)));
    const consoles = await Promise.all(urls.map((u) => openConsole(u)));
    for (const c of consoles) assert.equal(c.client.name, 'vm-20');
    await Promise.all(consoles.map((c) => c.client.waitUntil(() => c.client.updateCount > 0)));
    assert.equal(qemu.passwords.length, 20);
    assert.equal(new Set(qemu.passwords).size, 20, 'a fresh password for every session');
    for (const p of qemu.passwords) assert.match(p, /^[\x21-\x7e]{8}$/);
    // Each set is followed by its expiry in a few seconds, then by "now" once used.
    assert.deepEqual(qemu.expiries, Array.from({ length: 20 }, () => ['+10', 'now']).flat());
    for (const c of consoles) c.ws.close();
    await sleep(200);
    const store = storeBytes(stack.dataDir).toString('latin1');
    for (const p of qemu.passwords) {
      assert.ok(!stack.logs.text.includes(p), 'a one-time password is in the log');
      assert.ok(!store.includes(p), 'a one-time password is in the store');
    }
  });

  test('QMP failures end the attempt with a reason and free the slot: socket gone, command refused, a monitor that stops answering or never greets', async () => {
    const gone = await addVm('vm-gone', `${qemu.qmpPath}.missing`);
    const vm = await addVm('vm-fail', qemu.qmpPath);
    const failures: Array<[string, 'ok' | 'refuse' | 'slow' | 'silent', number, RegExp]> = [
      [gone, 'ok', CloseCode.BackendUnreachable, /QMP monitor unix:\S+\.missing: ENOENT/],
      [vm, 'refuse', CloseCode.BackendAuthFailed, /QMP set_password refused by unix:\S+: GenericError: Could not set password/],
      [vm, 'slow', CloseCode.BackendUnreachable, /did not answer set_password within 1000 ms/],
      [vm, 'silent', CloseCode.BackendUnreachable, /did not answer greeting within 1000 ms \(is another client connected\?/],
    ];
    for (const [id, mode, code, reason] of failures) {
      qemu.mode = mode;
      stack.logs.lines.length = 0;
      const f = await consoleFailure(await url(id));
      assert.equal(f.code, code, mode);
      const warned = stack.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['level'] === 'warn' && l['server'] === id);
      assert.ok(warned, `no warning for ${mode}`);
      assert.equal(warned['failure'], 'qmp');
      assert.match(String(warned['backendReason']), reason);
      // The session's slot is free again: nothing hangs.
      for (let i = 0; i < 50 && (stack.app.proxy?.sessionCount ?? 0) > 0; i++) await sleep(20);
      assert.equal(stack.app.proxy?.sessionCount, 0, mode);
    }
    // The monitor serves the next session once it answers again.
    qemu.mode = 'ok';
    const c = await openConsole(await url(vm));
    c.ws.close();
  });
});
