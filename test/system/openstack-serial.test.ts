/**
 * The OpenStack command-line client (Debian's python3-openstackclient) against our /v3 and Nova
 * API, and the serial console of a real QEMU VM (a boot sector assembled by the test prints a
 * banner on COM1 and echoes what it receives): `openstack server list|show`, `console url show
 * --novnc` (opened in Chromium: the VM's screen), `--serial`, `console log show --lines 20`, the
 * client's usual errors for an unknown server and another project's; serial.html in Chromium shows
 * the VM's text, typed characters reach the VM, the output API returns the same text and, with a
 * cursor, only what is new. QEMU, the service and Chromium start once. Fails, never skips, when
 * a package is missing (qemu-system-x86, chromium, python3-openstackclient).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { WebSocket } from 'ws';
import { canvasSize, launchBrowser, waitForExpression, waitForState, type BrowserHarness } from '../helpers/browser.js';
import { requireBinary } from '../helpers/real-vnc.js';
import { BANNER, startSerialVm, type SerialVm } from '../helpers/serial-vm.js';
import { http } from '../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../helpers/stack.js';

const OPENSTACK = '/usr/bin/openstack';
let vm: SerialVm;
let stack: Stack;
let s: Seed;
let browser: BrowserHarness;
let serverId = '';
let iamToken = '';

/** Runs the openstack CLI authenticated by password against our /v3 (as alice, or for another project). */
function openstack(args: string[], projectId = s.projectId): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/tmp',
    OS_AUTH_URL: `${stack.apiUrl}/v3`, OS_IDENTITY_API_VERSION: '3', OS_AUTH_TYPE: 'password',
    OS_USERNAME: s.user, OS_PASSWORD: s.password, OS_USER_DOMAIN_NAME: s.domain, OS_PROJECT_ID: projectId, OS_INTERFACE: 'public',
  };
  return new Promise((resolve) => {
    execFile(OPENSTACK, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function ok(args: string[]): Promise<string> {
  const r = await openstack(args);
  assert.equal(r.code, 0, `openstack ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const output = async (query = ''): Promise<{ output: string; cursor: number; start: number }> => {
  const r = await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${serverId}/console_output${query}`, { 'x-auth-token': iamToken });
  assert.equal(r.status, 200, r.text);
  return r.json;
};

async function until<T>(what: string, fn: () => Promise<T>, okFn: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (okFn(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  requireBinary(OPENSTACK, 'python3-openstackclient');
  vm = await startSerialVm();
  stack = await startStack();
  s = await seed(stack.app);
  const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'vm-serial', console: { host: '127.0.0.1', port: vm.vncPort, serial: vm.serial } });
  serverId = srv.id;
  const auth = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: s.user, password: s.password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } } });
  iamToken = String((await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, auth)).headers['x-subject-token']);
  // The service holds the serial port before the VM runs, so the banner is in the output.
  await output();
  await vm.start();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
  await vm?.stop();
});

test('openstack server list and server show, authenticated by password against our /v3 (the catalog gives the compute endpoint)', async () => {
  const list = JSON.parse(await ok(['server', 'list', '-f', 'json'])) as Array<{ ID: string; Name: string; Status: string }>;
  assert.deepEqual(list.map((x) => x.Name).sort(), ['db-01', 'vm-serial', 'web-01']);
  assert.equal(list.find((x) => x.ID === serverId)?.Status, 'ACTIVE');
  const show = JSON.parse(await ok(['server', 'show', serverId, '-f', 'json'])) as Record<string, unknown>;
  assert.equal(show['id'], serverId);
  assert.equal(show['name'], 'vm-serial');
  assert.equal(show['status'], 'ACTIVE');
  assert.equal(show['project_id'], s.projectId);
  const byName = JSON.parse(await ok(['server', 'show', 'vm-serial', '-f', 'json'])) as Record<string, unknown>;
  assert.equal(byName['id'], serverId);
});

test('an unknown server and another project\'s server give the client\'s usual error', async () => {
  for (const id of ['00000000-0000-4000-8000-000000000000', s.foreign.id, 'no-such-server']) {
    const r = await openstack(['server', 'show', id]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`No server with a name or ID of '${id}' exists`), r.stderr);
  }
  const log = await openstack(['console', 'log', 'show', s.foreign.id]);
  assert.notEqual(log.code, 0);
  assert.match(log.stderr, /No Server found for|could not be found/, log.stderr);
  // A token for the other project cannot read this project's servers either.
  const other = await openstack(['server', 'show', serverId], s.otherProjectId);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /No server with a name or ID/);
});

test('console url show --novnc: the URL opens in Chromium and shows the VM\'s screen', async () => {
  const r = JSON.parse(await ok(['console', 'url', 'show', '--novnc', serverId, '-f', 'json'])) as { type: string; url: string };
  assert.equal(r.type, 'novnc');
  assert.match(r.url, /\/vnc_auto\.html\?token=/);
  const page = await browser.open(r.url);
  try {
    await waitForState(page.page, 'connected', 20_000);
    const size = await canvasSize(page.page);
    assert.ok(size.width >= 640 && size.height >= 400, JSON.stringify(size));
    assert.deepEqual(page.errors, []);
  } finally {
    await page.close();
  }
});

test('console url show --serial gives the serial WebSocket; console log show --lines 20 gives the VM\'s text', async () => {
  const r = JSON.parse(await ok(['console', 'url', 'show', '--serial', serverId, '-f', 'json'])) as { type: string; url: string };
  assert.equal(r.type, 'serial');
  assert.match(r.url, /^ws:\/\/127\.0\.0\.1:\d+\/serial-websocket\?token=/);
  // The URL is a WebSocket to the VM's serial port, as Nova's serial proxy gives.
  const ws = new WebSocket(r.url);
  let got = '';
  ws.on('message', (d, binary) => {
    if (binary) got += (d as Buffer).toString('latin1');
  });
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  await until('the banner on the serial WebSocket', async () => got, (t) => t.includes(BANNER));
  ws.close();
  const log = await until('the banner in console log show', () => ok(['console', 'log', 'show', '--lines', '20', serverId]), (t) => t.includes(BANNER));
  assert.ok(log.split('\n').length <= 21, log);
});

test('serial.html in Chromium shows the VM\'s text; typed characters reach the VM; the output API returns the same text, and with a cursor only what is new', async () => {
  const rc = await http('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${serverId}/remote_console`,
    { 'x-auth-token': iamToken, 'content-type': 'application/json', 'x-language': 'zh-cn' }, JSON.stringify({ remote_console: { protocol: 'serial', type: 'serial' } }));
  assert.equal(rc.status, 200, rc.text);
  const url = rc.json.remote_console.url as string;
  assert.match(url, /\/serial\.html\?token=[0-9a-f-]{36}&lang=ZH/);
  const before = await until('the banner in the output API', () => output(), (o) => o.output.includes(BANNER));
  const page = await browser.open(url);
  try {
    await waitForState(page.page, 'connected', 20_000);
    const rows = "document.querySelector('.xterm-rows')?.textContent ?? ''";
    await waitForExpression(page.page, `(${rows}).includes(${JSON.stringify(BANNER)})`, 10_000);
    assert.equal(await page.page.evaluate('document.body.dataset.role'), 'writer');
    // X-Language: zh-cn gave lang=ZH: the page speaks Chinese.
    assert.equal(await page.page.evaluate('document.documentElement.lang'), 'zh-CN');
    assert.equal(await page.page.evaluate("document.getElementById('role').textContent"), '您正在输入');
    assert.equal(await page.page.evaluate("document.getElementById('btn-take').textContent"), '接管输入');
    await page.page.click('#term');
    await page.page.keyboard.type('hi');
    await waitForExpression(page.page, `(${rows}).includes('[h][i]')`, 10_000);
    const fresh = await until('the echo in the output API', () => output(`?cursor=${before.cursor}`), (o) => o.output.includes('[i]'));
    assert.equal(fresh.output, '[h][i]', 'with the cursor: only what is new');
    assert.equal(fresh.start, before.cursor);
    const all = await output();
    assert.ok(all.output.includes(BANNER) && all.output.endsWith('[h][i]'), JSON.stringify(all.output));
    // Paste: the clipboard is typed into the port.
    await page.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(url).origin });
    await page.page.evaluate("navigator.clipboard.writeText('ok')");
    await page.page.click('#btn-paste');
    await waitForExpression(page.page, `(${rows}).includes('[o][k]')`, 10_000);
    assert.ok((await output(`?cursor=${fresh.cursor}`)).output.startsWith('[o][k]'));
    assert.deepEqual(page.errors, []);
  } finally {
    await page.close();
  }
});
