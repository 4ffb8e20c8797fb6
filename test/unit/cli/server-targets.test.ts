/**
 * `server add --kind ...` and `server check <id>` through the real CLI, against the demo VNC
 * server and a stand-in QEMU (test/helpers/fake-qemu.ts); the inventory's target validation.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { DemoVncServer } from '../../../src/demo/index.js';
import { validateConsoleTarget, type ConsoleTargetInput } from '../../../src/inventory/inventory-service.js';
import { ValidationError } from '../../../src/errors.js';
import { runCli, seedWithCli, type CliSeed } from '../../helpers/cli.js';
import { startFakeQemu, type FakeQemu } from '../../helpers/fake-qemu.js';
import { tempDir } from '../../helpers/stack.js';

describe('server add --kind and server check', () => {
  let demo: DemoVncServer;
  let demoPort = 0;
  let qemu: FakeQemu;
  let seeded: CliSeed;
  let deadPort = 0;
  const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_BACKEND_MANAGEMENT_TIMEOUT_SECONDS: '1' };
  const add = async (...args: string[]): Promise<string> => {
    const r = await runCli(['server', 'add', '--project', seeded.projectId, '--name', `s${Math.random()}`, ...args, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { id: string }).id;
  };
  const check = async (id: string): Promise<{ code: number | null; out: Record<string, unknown> }> => {
    const r = await runCli(['server', 'check', id, '--json', '--timeout', '5'], env);
    return { code: r.code, out: JSON.parse(r.stdout) as Record<string, unknown> };
  };

  before(async () => {
    demo = new DemoVncServer({ name: 'demo', password: 'pw-12345', width: 320, height: 200 });
    demoPort = (await demo.listen(0, '127.0.0.1')).port;
    qemu = await startFakeQemu();
    seeded = await seedWithCli(env, demoPort);
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    deadPort = (dead.address() as { port: number }).port;
    await new Promise<void>((r) => dead.close(() => r()));
  });
  after(async () => {
    await demo.close();
    await qemu.stop();
  });

  test('server add takes every kind and shows it', async () => {
    const id = await add('--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(qemu.vncPort), '--qmp', qemu.qmpPath, '--tls-name', 'hv1.example.test');
    const shown = JSON.parse((await runCli(['server', 'show', id, '--json'], env)).stdout) as Record<string, unknown>;
    assert.equal(shown['consoleKind'], 'qemu-qmp');
    assert.equal(shown['qmp'], `unix:${qemu.qmpPath}`);
    assert.equal(shown['consoleAuth'], 'one-time-password');
    assert.equal(shown['consoleTls'], 'hv1.example.test');
    const lv = await add('--kind', 'libvirt', '--libvirt-uri', 'qemu:///system', '--domain', 'vm1');
    const list = (await runCli(['server', 'list'], env)).stdout;
    assert.match(list, new RegExp(`${lv}.*libvirt\\s+qemu:///system vm1\\s+one-time-password`));
    const bad = await runCli(['server', 'add', '--project', seeded.projectId, '--name', 'x', '--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', '5900'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error: a qemu-qmp target needs the QMP monitor/);
  });

  test('server check says what worked, or which step failed: connect, password, QMP, TLS', async () => {
    const ok = await check(await add('--host', '127.0.0.1', '--port', String(demoPort), '--password', 'pw-12345'));
    assert.equal(ok.code, 0);
    assert.deepEqual({ ...ok.out, server: undefined }, { ok: true, server: undefined, kind: 'static', address: `127.0.0.1:${demoPort}`, tls: 'no', auth: 'vnc-password', rfb: '3.8', desktop: '320x200' });

    const qmp = await check(await add('--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(qemu.vncPort), '--qmp', `unix:${qemu.qmpPath}`));
    assert.equal(qmp.code, 0, JSON.stringify(qmp.out));
    assert.equal(qmp.out['auth'], 'one-time-password');

    const cases: Array<[string[], string, RegExp]> = [
      [['--host', '127.0.0.1', '--port', String(deadPort)], 'connect', /connect to 127\.0\.0\.1:\d+ failed: ECONNREFUSED/],
      [['--host', '127.0.0.1', '--port', String(demoPort), '--password', 'wrong'], 'password', /rejected the VNC password/],
      [['--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(qemu.vncPort), '--qmp', '/nonexistent/qmp.sock'], 'qmp', /ENOENT/],
      [['--host', '127.0.0.1', '--port', String(demoPort), '--password', 'pw-12345', '--tls'], 'tls', /does not offer TLS \(VeNCrypt\) and this target requires it/],
    ];
    for (const [args, failure, reason] of cases) {
      const r = await check(await add(...args));
      assert.equal(r.code, 1, failure);
      assert.equal(r.out['ok'], false);
      assert.equal(r.out['failed'], failure);
      assert.match(String(r.out['reason']), reason);
    }
    qemu.mode = 'refuse';
    const refused = await check(await add('--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(qemu.vncPort), '--qmp', qemu.qmpPath));
    qemu.mode = 'ok';
    assert.deepEqual([refused.code, refused.out['failed']], [1, 'qmp']);
    assert.match(String(refused.out['reason']), /set_password refused/);
    const missing = await runCli(['server', 'check', '00000000-0000-4000-8000-000000000000'], env);
    assert.equal(missing.code, 3);
  });
});

test('console targets are validated per kind, with the field that is wrong', () => {
  const bad: Array<[ConsoleTargetInput, string, RegExp]> = [
    [{ kind: 'nope' }, 'kind', /one of static, qemu-qmp, libvirt/],
    [{ host: 'h', port: 0 }, 'port', /1-65535/],
    [{ host: 'h', port: 5900, qmp: '/x' }, 'qmp', /not part of a static target/],
    [{ kind: 'qemu-qmp', host: 'h', port: 5900 }, 'qmp', /needs the QMP monitor/],
    [{ kind: 'qemu-qmp', host: 'h', port: 5900, qmp: 'relative.sock' }, 'qmp', /neither unix:\/path nor tcp:host:port/],
    [{ kind: 'qemu-qmp', host: 'h', port: 5900, qmp: `/${'x'.repeat(120)}` }, 'qmp', /at most 107 bytes/],
    [{ kind: 'qemu-qmp', host: 'h', port: 5900, qmp: '/q', password: 'x' }, 'password', /fresh password for each session/],
    [{ kind: 'libvirt', uri: 'qemu:///system', domain: '--help' }, 'domain', /not starting with -/],
    [{ kind: 'libvirt', uri: '-c', domain: 'vm' }, 'uri', /connection URI/],
    [{ kind: 'libvirt', uri: 'qemu:///system', domain: 'vm', port: 5900 }, 'port', /from the domain's live XML/],
    [{ kind: 'libvirt', uri: 'qemu:///system', domain: 'vm', tls: true }, 'tlsName', /no host to default to/],
    [{ host: 'h', port: 5900, tlsName: 'bad name' }, 'tlsName', /not a host name/],
  ];
  for (const [input, field, message] of bad) {
    assert.throws(() => validateConsoleTarget(input), (e: unknown) => e instanceof ValidationError && e.field === field && message.test(e.message), JSON.stringify(input));
  }
  assert.deepEqual(validateConsoleTarget({ kind: 'qemu-qmp', host: ' 10.0.0.5 ', port: 5901, qmp: '10.0.0.5:4444', tls: true }).target,
    { kind: 'qemu-qmp', host: '10.0.0.5', port: 5901, qmp: 'tcp:10.0.0.5:4444', auth: 'one-time-password', passwordSealed: null, tls: { serverName: '10.0.0.5' } });
  assert.deepEqual(validateConsoleTarget({ kind: 'libvirt', uri: 'qemu+tls://hv2.example.test/system', domain: 'vm2', tls: true }).target,
    { kind: 'libvirt', uri: 'qemu+tls://hv2.example.test/system', domain: 'vm2', host: null, auth: 'one-time-password', passwordSealed: null, tls: { serverName: 'hv2.example.test' } });
});
