/**
 * `libvirt` targets against a real libvirt: Debian's libvirtd (started by the test, stopped after
 * it) running a QEMU domain under TCG. The driver finds the VNC address in the domain's live XML
 * and sets a one-time password through `virsh update-device --live`. libvirtd, the domain,
 * the service and Chromium start once for the whole file. Fails, never skips, when a package is
 * missing (libvirt-daemon-system, libvirt-clients, qemu-system-x86, chromium).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendError } from '../../src/errors.js';
import { ByteReader, clientHandshake } from '../../src/rfb/index.js';
import { canvasSize, launchBrowser, saveScreenshot, waitForState, type BrowserHarness } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { openConsole } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { startLibvirt, type Libvirt } from '../helpers/libvirt.js';
import { seed, startStack, type Seed, type Stack } from '../helpers/stack.js';

const DOMAIN = `ecs-console-test-${process.pid}`;
let libvirt: Libvirt;
let browser: BrowserHarness;
let stack: Stack;
let s: Seed;
let vmId = '';

const url = async (id: string): Promise<string> => (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), id)).remote_console.url;

/** The domain's VNC password and its expiry as libvirt holds them now (`--security-info` shows the password). */
function livePassword(): { password: string; validTo: string } {
  const xml = libvirt.virsh(['dumpxml', '--domain', DOMAIN, '--security-info']);
  const tag = /<graphics\b[^>]*>/.exec(xml)![0];
  // libvirt writes attribute values XML-escaped.
  const unescape = (v: string): string => v.replace(/&(?:#(\d+)|(quot|apos|amp|lt|gt));/g, (_, d: string, n: string) =>
    d ? String.fromCharCode(Number(d)) : ({ quot: '"', apos: '\'', amp: '&', lt: '<', gt: '>' } as Record<string, string>)[n]!);
  return { password: unescape(/passwd='([^']*)'/.exec(tag)?.[1] ?? ''), validTo: /passwdValidTo='([^']*)'/.exec(tag)?.[1] ?? '' };
}

function vncPort(): number {
  return Number(/<graphics\b[^>]*\bport='(\d+)'/.exec(libvirt.virsh(['dumpxml', '--domain', DOMAIN]))![1]);
}

before(async () => {
  [libvirt, browser] = await Promise.all([startLibvirt(), launchBrowser()]);
  libvirt.createDomain(DOMAIN);
  stack = await startStack();
  s = await seed(stack.app, { host: '127.0.0.1', port: 1 });
  vmId = (await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'libvirt-vm', console: { kind: 'libvirt', uri: libvirt.uri, domain: DOMAIN } })).id;
});

after(async () => {
  await stack?.stop();
  await browser?.close();
  await libvirt?.stop();
});

describe('libvirt targets with a real libvirtd', () => {
  test('Chromium shows the domain\'s screen through the API', async () => {
    const o = await browser.open(await url(vmId));
    try {
      assert.equal((await waitForState(o.page, ['connected', 'failed'], 20_000)).state, 'connected');
      const { width, height } = await canvasSize(o.page);
      assert.ok(width >= 640 && height >= 400, `${width}x${height}`);
      await saveScreenshot(o.page, 'console-libvirt.png');
      assert.deepEqual(o.errors, [], 'no page errors or CSP violations');
    } finally {
      await o.close();
    }
  });

  test('each session\'s password is replaced by an expired one once used: not usable, not stored, not logged; simultaneous sessions all connect', async () => {
    const consoles = await Promise.all(Array.from({ length: 5 }, async () => openConsole(await url(vmId))));
    await Promise.all(consoles.map((c) => c.client.waitUntil(() => c.client.updateCount > 0, 20_000)));
    for (const c of consoles) c.ws.close();
    const live = livePassword();
    assert.match(live.password, /^[\x21-\x7e]{8}$/);
    assert.ok(Date.parse(`${live.validTo}Z`) < Date.now(), `expired: ${live.validTo}`);
    const sock = net.connect(vncPort(), '127.0.0.1');
    const reader = new ByteReader();
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('close', () => reader.end());
    await assert.rejects(clientHandshake(reader, (b) => sock.write(b), { password: live.password, signal: AbortSignal.timeout(10_000) }),
      (e: unknown) => e instanceof BackendError && e.failure === 'password');
    sock.destroy();
    await sleep(200);
    const store = Buffer.concat(readdirSync(stack.dataDir).filter((f) => f.startsWith('ecs-console.db')).map((f) => readFileSync(join(stack.dataDir, f)))).toString('latin1');
    assert.ok(!store.includes(live.password) && !stack.logs.text.includes(live.password));
  });

  test('server check: reach and log in, or say what failed (a domain libvirt does not know)', async () => {
    const env = { ECS_CONSOLE_DATA_DIR: stack.dataDir };
    const ok = await runCli(['server', 'check', vmId, '--json'], env);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const r = JSON.parse(ok.stdout) as Record<string, unknown>;
    assert.equal(r['address'], `127.0.0.1:${vncPort()}`);
    assert.equal(r['auth'], 'one-time-password');
    const added = await runCli(['server', 'add', '--project', s.projectId, '--name', 'no-such', '--kind', 'libvirt', '--libvirt-uri', libvirt.uri, '--domain', 'no-such-domain', '--json'], env);
    assert.equal(added.code, 0, added.stderr);
    const bad = await runCli(['server', 'check', (JSON.parse(added.stdout) as { id: string }).id, '--json'], env);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    const b = JSON.parse(bad.stdout) as Record<string, unknown>;
    assert.equal(b['failed'], 'libvirt');
    assert.match(String(b['reason']), /virsh dumpxml failed \(libvirt qemu:\/\/\/system\): .*no-such-domain/);
  });
});
