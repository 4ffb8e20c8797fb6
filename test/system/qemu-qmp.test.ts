/**
 * No standing VNC secret for QEMU: `qemu-qmp` targets against real QEMU (TCG, SeaBIOS on screen),
 * one with plain VNC and one with TLS and client certificates (tls-creds-x509, verify-peer=on),
 * both `-vnc ...,password=on` with no password set. The service is the real binary (`serve`); a
 * tap in front of the plain VM's QMP monitor writes down the passwords it sets. Each QEMU, the
 * service and Chromium start once for the whole file. Fails, never skips, when a package is
 * missing (qemu-system-x86, openssl, chromium).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendError } from '../../src/errors.js';
import { CloseCode } from '../../src/proxy/close-codes.js';
import { ByteReader, clientHandshake } from '../../src/rfb/index.js';
import { canvasSize, launchBrowser, readCanvasPixels, saveScreenshot, waitForState, type BrowserHarness } from '../helpers/browser.js';
import { consoleUrlFrom, iamTokenFrom, runCli, seedWithCli, startCli, type CliSeed, type RunningServer } from '../helpers/cli.js';
import { consoleFailure, openConsole } from '../helpers/console-client.js';
import { PNG } from 'pngjs';
import { http } from '../helpers/signed-fetch.js';
import { startQmpTap, type QmpTap } from '../helpers/qmp-tap.js';
import { startQemuVm, type QemuVm } from '../helpers/real-vnc.js';
import { tempDir } from '../helpers/stack.js';
import { makePki, type Pki } from '../helpers/x509.js';

let plain: QemuVm;
let tlsVm: QemuVm;
let tap: QmpTap;
let pki: Pki;
let service: RunningServer;
let seeded: CliSeed;
let iamToken = '';
let browser: BrowserHarness;
const dataDir = tempDir();
/** The client certificate files the service reads (overwritten to rotate them). */
const live = { cert: '', key: '' };
let env: Record<string, string> = {};
const ids: Record<string, string> = {};

async function addServer(name: string, args: string[]): Promise<string> {
  const r = await runCli(['server', 'add', '--project', seeded.projectId, '--name', name, ...args, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { id: string }).id;
}

const url = (serverId: string): Promise<string> => consoleUrlFrom(service.apiUrl, { ...seeded, serverId }, iamToken);

/** `server check` with other TLS settings than the service's. */
async function check(serverId: string, tls: Record<string, string>): Promise<Record<string, unknown>> {
  const r = await runCli(['server', 'check', serverId, '--json', '--timeout', '10'], { ...env, ECS_CONSOLE_BACKEND_TLS_CERT: '', ECS_CONSOLE_BACKEND_TLS_KEY: '', ...tls });
  assert.ok(r.stdout, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** A plain RFB client straight to QEMU's VNC port with `password` (no proxy). */
async function directVnc(port: number, password: string): Promise<unknown> {
  const sock = net.connect(port, '127.0.0.1');
  const reader = new ByteReader();
  sock.on('data', (d: Buffer) => reader.push(d));
  sock.on('close', () => reader.end());
  sock.on('error', () => undefined);
  try {
    return await clientHandshake(reader, (b) => sock.write(b), { password, signal: AbortSignal.timeout(10_000) });
  } finally {
    sock.destroy();
  }
}

/** Sends the service SIGHUP; what its `configuration reloaded` line says of the hypervisor TLS files. */
async function sighup(): Promise<string | undefined> {
  const mark = service.stdout().length;
  service.child.kill('SIGHUP');
  const line = (): string | undefined => service.stdout().slice(mark).split('\n').find((l) => l.includes('"msg":"configuration reloaded"'));
  for (let i = 0; i < 100 && !line(); i++) await sleep(50);
  assert.ok(line(), 'the service logged its reload');
  return (JSON.parse(line()!) as { tls: Record<string, string> }).tls['backend'];
}

/** The distinguished names of the TLS clients QEMU has now (QMP query-vnc). */
async function x509Clients(): Promise<string[]> {
  const r = (await tlsVm.query('query-vnc')) as { clients?: Array<{ x509_dname?: string }> };
  return (r.clients ?? []).map((c) => c.x509_dname ?? '');
}

before(async () => {
  pki = makePki(join(dataDir, 'pki'));
  const first = pki.client('proxy-one');
  live.cert = join(dataDir, 'client-cert.pem');
  live.key = join(dataDir, 'client-key.pem');
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  [plain, tlsVm, browser] = await Promise.all([startQemuVm(), startQemuVm({ tlsDir: pki.qemuDir }), launchBrowser()]);
  tap = await startQmpTap(plain.qmpPath);
  env = {
    ECS_CONSOLE_DATA_DIR: join(dataDir, 'data'), ECS_CONSOLE_LOG_LEVEL: 'debug', ECS_CONSOLE_PROXY_MAX_SESSIONS_PER_SERVER: '30',
    ECS_CONSOLE_BACKEND_TLS_CA: pki.caCert, ECS_CONSOLE_BACKEND_TLS_CERT: live.cert, ECS_CONSOLE_BACKEND_TLS_KEY: live.key,
  };
  seeded = await seedWithCli(env, plain.port);
  ids['plain'] = await addServer('vm-plain', ['--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(plain.port), '--qmp', tap.path]);
  ids['tls'] = await addServer('vm-tls', ['--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(tlsVm.port), '--qmp', tlsVm.qmpPath, '--tls']);
  ids['wrongName'] = await addServer('vm-wrong-name', ['--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(tlsVm.port), '--qmp', tlsVm.qmpPath, '--tls-name', 'other.example.test']);
  ids['downgrade'] = await addServer('vm-plain-but-tls', ['--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(plain.port), '--qmp', plain.qmpPath, '--tls']);
  ids['gone'] = await addServer('vm-gone', ['--kind', 'qemu-qmp', '--host', '127.0.0.1', '--port', String(plain.port), '--qmp', `${plain.qmpPath}.gone`]);
  service = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env);
  iamToken = await iamTokenFrom(service.apiUrl, seeded);
});

after(async () => {
  service?.child.kill('SIGTERM');
  await service?.exited;
  await Promise.all([browser?.close(), tap?.stop(), plain?.stop(), tlsVm?.stop()]);
});

describe('qemu-qmp targets with real QEMU', () => {
  test('Chromium shows the VM\'s screen through the API, plain and over TLS with client certificates', async () => {
    for (const which of ['plain', 'tls'] as const) {
      const o = await browser.open(await url(ids[which]!));
      try {
        assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected', which);
        const { width, height } = await canvasSize(o.page);
        assert.ok(width >= 640 && height >= 400, `${which}: ${width}x${height}`);
        // SeaBIOS prints text: the canvas is not one colour (wait for it to draw).
        const points: Array<[number, number]> = [];
        for (let y = 0; y < 100; y += 2) for (let x = 0; x < 400; x += 3) points.push([x, y]);
        let colours = 1;
        for (let i = 0; i < 100 && colours < 2; i++) {
          colours = new Set((await readCanvasPixels(o.page, points)).map((p) => p.join(','))).size;
          if (colours < 2) await sleep(200);
        }
        assert.ok(colours >= 2, `${which}: the guest screen is drawn`);
        await saveScreenshot(o.page, `console-qemu-qmp-${which}.png`);
        assert.deepEqual(o.errors, [], 'no page errors or CSP violations');
      } finally {
        await o.close();
      }
    }
  });

  test('every session gets a fresh password, expired once used, never in the store or the log; a direct VNC client with it fails', async () => {
    const from = tap.commands.length;
    for (let i = 0; i < 3; i++) {
      const c = await openConsole(await url(ids['plain']!));
      await c.client.waitUntil(() => c.client.updateCount > 0, 10_000);
      c.ws.close();
    }
    const sent = tap.commands.slice(from);
    const passwords = sent.filter((c) => c.execute === 'set_password').map((c) => c.arguments!['password']!);
    assert.equal(passwords.length, 3);
    assert.equal(new Set(passwords).size, 3, 'a different password for every session');
    // Set, valid for 10 s at most, and expired as soon as the session has authenticated.
    assert.deepEqual(sent.map((c) => `${c.execute} ${c.arguments?.['time'] ?? ''}`.trim()).filter((c) => c !== 'qmp_capabilities'),
      ['set_password', 'expire_password +10', 'expire_password now', 'set_password', 'expire_password +10', 'expire_password now', 'set_password', 'expire_password +10', 'expire_password now']);
    await sleep(300);
    const store = Buffer.concat(readdirSync(env['ECS_CONSOLE_DATA_DIR']!).filter((f) => f.startsWith('ecs-console.db')).map((f) => readFileSync(join(env['ECS_CONSOLE_DATA_DIR']!, f)))).toString('latin1');
    const logs = service.stdout() + service.stderr();
    for (const p of passwords) {
      assert.ok(!store.includes(p), 'a one-time password is in the store');
      assert.ok(!logs.includes(p), 'a one-time password is in the log');
      await assert.rejects(directVnc(plain.port, p), (e: unknown) => e instanceof BackendError && e.failure === 'password', 'an expired one-time password still works');
    }
  });

  test('screenshot API: the PNG is QEMU\'s own screendump, plain and over TLS (one-time passwords through QMP)', async () => {
    for (const [which, vm] of [['plain', plain], ['tls', tlsVm]] as const) {
      const r = await http('GET', `${service.apiUrl}/v1/${seeded.projectId}/cloudservers/${ids[which]!}/screenshot`, { 'x-auth-token': iamToken });
      assert.equal(r.status, 200, `${which}: ${r.text}`);
      const png = PNG.sync.read(r.body);
      const dump = join(dataDir, `screendump-${which}.ppm`);
      await vm.query('screendump', { filename: dump });
      const ppm = readFileSync(dump);
      const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(ppm.subarray(0, 32).toString('latin1'));
      assert.ok(m, 'a PPM screendump');
      const [w, h] = [Number(m[1]), Number(m[2])];
      assert.deepEqual([png.width, png.height], [w, h], which);
      const body = ppm.subarray(m[0].length);
      let differing = 0;
      for (let i = 0; i < w * h; i++) {
        if (png.data[i * 4] !== body[i * 3] || png.data[i * 4 + 1] !== body[i * 3 + 1] || png.data[i * 4 + 2] !== body[i * 3 + 2]) differing++;
      }
      // The text cursor blinks between the two captures: a few cells at most.
      assert.ok(differing < w * h * 0.005, `${which}: ${differing} of ${w * h} pixels differ`);
      const colours = new Set<number>();
      for (let i = 0; i < w * h; i += 7) colours.add((png.data[i * 4]! << 16) | (png.data[i * 4 + 1]! << 8) | png.data[i * 4 + 2]!);
      assert.ok(colours.size >= 2, `${which}: SeaBIOS text is on the screen`);
    }
  });

  test('20 simultaneous sessions to one VM all connect', async () => {
    const urls = await Promise.all(Array.from({ length: 20 }, () => url(ids['plain']!)));
    const consoles = await Promise.all(urls.map((u) => openConsole(u)));
    await Promise.all(consoles.map((c) => c.client.waitUntil(() => c.client.updateCount > 0, 20_000)));
    assert.equal(consoles.length, 20);
    for (const c of consoles) c.ws.close();
  });

  test('refused with a clear reason: wrong CA, wrong name, no client certificate, a certificate of another CA, plain VNC for a TLS target, QMP gone', async () => {
    const foreign = pki.foreignClient('stranger');
    const cases: Array<[string, Record<string, string>, string, RegExp]> = [
      [ids['tls']!, { ECS_CONSOLE_BACKEND_TLS_CA: pki.otherCaCert }, 'tls-certificate', /certificate is not trusted: UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
      [ids['wrongName']!, { ECS_CONSOLE_BACKEND_TLS_CERT: live.cert, ECS_CONSOLE_BACKEND_TLS_KEY: live.key }, 'tls-name', /not valid for other\.example\.test/],
      [ids['tls']!, {}, 'tls-client-certificate', /requires a client certificate and none is configured/],
      [ids['tls']!, { ECS_CONSOLE_BACKEND_TLS_CERT: foreign.cert, ECS_CONSOLE_BACKEND_TLS_KEY: foreign.key }, 'tls-client-certificate', /refused our client certificate/],
      [ids['downgrade']!, {}, 'tls', /does not offer TLS \(VeNCrypt\) and this target requires it: plain VNC refused/],
      [ids['gone']!, {}, 'qmp', /QMP monitor unix:\S+\.gone: ENOENT/],
    ];
    for (const [id, tls, failure, reason] of cases) {
      const r = await check(id, tls);
      assert.equal(r['ok'], false, failure);
      assert.equal(r['failed'], failure, JSON.stringify(r));
      assert.match(String(r['reason']), reason);
    }
    // Through the proxy, the browser learns only that authentication failed; the log says why.
    const f = await consoleFailure(await url(ids['wrongName']!));
    assert.equal(f.code, CloseCode.BackendAuthFailed);
    assert.ok(!/other\.example|certificate/.test(f.rfbError + f.reason), 'TLS details reached the browser');
    await sleep(200);
    const warned = service.stdout().split('\n').filter((l) => l.includes(ids['wrongName']!) && l.includes('console backend failed'));
    assert.ok(warned.some((l) => (JSON.parse(l) as { failure?: string }).failure === 'tls-name'), 'logged with failure tls-name');
  });

  test('SIGHUP reloads the client certificate: an open session goes on, the next one presents the new certificate; unusable files keep the previous one', async () => {
    const open = await openConsole(await url(ids['tls']!));
    await open.client.waitUntil(() => open.client.updateCount > 0, 10_000);
    assert.ok((await x509Clients()).includes('CN=proxy-one'), `QEMU sees ${JSON.stringify(await x509Clients())}`);
    const second = pki.client('proxy-two');
    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    assert.equal(await sighup(), 'reloaded');
    const next = await openConsole(await url(ids['tls']!));
    await next.client.waitUntil(() => next.client.updateCount > 0, 10_000);
    const names = await x509Clients();
    assert.ok(names.includes('CN=proxy-two'), `the new session presents the new certificate: ${JSON.stringify(names)}`);
    assert.ok(names.includes('CN=proxy-one'), 'the open session is still there');
    // The open session still works.
    const update = open.client.waitForUpdate();
    open.client.requestUpdate(false);
    await update;
    open.ws.close();
    next.ws.close();

    // Files that cannot be used: the previous certificate stays in use.
    writeFileSync(live.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    assert.equal(await sighup(), 'kept-previous');
    const after = await openConsole(await url(ids['tls']!));
    await after.client.waitUntil(() => after.client.updateCount > 0, 10_000);
    assert.ok((await x509Clients()).includes('CN=proxy-two'), 'a new session still presents the second certificate');
    after.ws.close();
  });
});
