/**
 * The operator's page (/operator/ on the API listener) in Chromium (Debian's, through
 * playwright-core), against the real binary (`serve`) and two built-in demo VNC servers in two
 * projects: an IAM domain administrator signs in, sees both servers' screenshot thumbnails (the
 * very pixels of each demo server), opens a console in a new tab and types (the server's recording
 * policy, set through the admin API, records the screen and key events), ends the session from the
 * page with a reason (the console tab shows it), finds the session in the audit view and plays its
 * recording: the played frame is what the console tab showed after typing. db-01 also has a serial
 * port (a local TCP server standing in for QEMU's socket chardev): its card's serial button opens
 * serial.html, which shows what the port printed and sends what is typed. Also: the page's CSP
 * and no CSP violations, a non-administrator's clear refusal, Chinese, a phone's viewport.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { DemoVncServer } from '../../src/demo/index.js';
import { differingPixels, launchBrowser, saveScreenshot, waitForExpression, waitForState, type BrowserHarness, type OpenedPage } from '../helpers/browser.js';
import { runCli, startCli, type CliResult, type RunningServer } from '../helpers/cli.js';
import { http } from '../helpers/signed-fetch.js';
import { tempDir } from '../helpers/stack.js';

const PASSWORD = 'operator-pw-123';
/** What db-01's serial port prints to whoever connects. */
const SERIAL_BANNER = 'db-01 login: ';
let web: DemoVncServer;
let db: DemoVncServer;
let browser: BrowserHarness;
let service: RunningServer;
/** db-01's serial port: prints the banner, then echoes each byte as [x]. */
let serialPort: NetServer;
const serialPeers = new Set<Socket>();
const ids = { p1: '', p2: '', web: '', db: '' };
const env: Record<string, string> = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_RECORDING_FLUSH_MS: '200', ECS_CONSOLE_PROXY_DRAIN_SECONDS: '0' };

const must = (r: CliResult): CliResult => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};

async function adminToken(): Promise<string> {
  const r = await http('POST', `${service.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
    auth: { identity: { methods: ['password'], password: { user: { name: 'ops', password: PASSWORD, domain: { name: 'd' } } } }, scope: { project: { id: ids.p1 } } },
  }));
  assert.equal(r.status, 201, r.text);
  return String(r.headers['x-subject-token']);
}

before(async () => {
  // Two demo servers that look different (name, size); no cursor blink, so their screens hold still.
  web = new DemoVncServer({ name: 'web-01', width: 320, height: 200, blinkIntervalMs: 3_600_000 });
  db = new DemoVncServer({ name: 'db-01', width: 400, height: 240, blinkIntervalMs: 3_600_000 });
  serialPort = createServer((sock) => {
    serialPeers.add(sock);
    sock.on('close', () => serialPeers.delete(sock));
    sock.on('error', () => undefined);
    sock.write(SERIAL_BANNER);
    sock.on('data', (d) => sock.write([...d.toString('latin1')].map((c) => `[${c}]`).join('')));
  });
  await new Promise<void>((resolve) => serialPort.listen(0, '127.0.0.1', resolve));
  const serialAt = `tcp:127.0.0.1:${(serialPort.address() as { port: number }).port}`;
  const [a, b] = await Promise.all([web.listen(0), db.listen(0)]);
  must(await runCli(['init'], env));
  ids.p1 = JSON.parse(must(await runCli(['project', 'create', '--name', 'p1', '--domain', 'd', '--json'], env)).stdout).id as string;
  ids.p2 = JSON.parse(must(await runCli(['project', 'create', '--name', 'p2', '--domain', 'd', '--json'], env)).stdout).id as string;
  must(await runCli(['user', 'create', '--domain', 'd', '--name', 'ops', '--admin', '--password-stdin'], env, `${PASSWORD}\n`));
  must(await runCli(['user', 'create', '--domain', 'd', '--name', 'viewer', '--password-stdin'], env, `${PASSWORD}\n`));
  ids.web = JSON.parse(must(await runCli(['server', 'add', '--project', ids.p1, '--name', 'web-01', '--host', '127.0.0.1', '--port', String(a.port), '--json'], env)).stdout).id as string;
  ids.db = JSON.parse(must(await runCli(['server', 'add', '--project', ids.p2, '--name', 'db-01', '--host', '127.0.0.1', '--port', String(b.port), '--serial', serialAt, '--json'], env)).stdout).id as string;
  [service, browser] = await Promise.all([startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env), launchBrowser()]);
  // The recording policy of web-01, through the admin API: the screen and key events.
  const put = await http('PUT', `${service.apiUrl}/admin/v1/servers/${ids.web}/recording-policy`, { 'content-type': 'application/json', 'x-auth-token': await adminToken() },
    JSON.stringify({ recording_policy: { enabled: true, keystrokes: true, retention_days: 7 } }));
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.recording_policy.keystrokes, true);
});

after(async () => {
  service?.child.kill('SIGTERM');
  await service?.exited;
  await browser?.close();
  await Promise.all([web?.close(), db?.close()]);
  for (const sock of serialPeers) sock.destroy();
  serialPort?.close();
});

/** Page errors and console errors, on a tab the harness did not open (a pop-up). */
function watch(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** How far the page is wider than its viewport (0: no horizontal scrolling). */
function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => {
    const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
    return d.scrollWidth - d.clientWidth;
  });
}

async function signIn(o: OpenedPage, user = 'ops', state = 'ready'): Promise<void> {
  await o.page.waitForSelector('body[data-state="login"]', { timeout: 10_000 });
  await o.page.fill('#login-domain', 'd');
  await o.page.fill('#login-user', user);
  await o.page.fill('#login-password', PASSWORD);
  await o.page.fill('#login-project', 'p1');
  await o.page.click('#login-submit');
  await o.page.waitForSelector(`body[data-state="${state}"]`, { timeout: 20_000 });
}

/** RGB888 pixels of an element's image (a thumbnail, at its natural size) or of the page's largest canvas. */
async function pixels(page: Page, imgSelector?: string): Promise<{ width: number; height: number; rgb: Uint32Array }> {
  const got = await page.evaluate((sel) => {
    type Img = { naturalWidth: number; naturalHeight: number };
    type Ctx = { drawImage(i: unknown, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
    type Canvas = { width: number; height: number; getContext(t: '2d'): Ctx };
    const doc = (globalThis as unknown as { document: { querySelector(s: string): unknown; querySelectorAll(s: string): Iterable<Canvas>; createElement(t: 'canvas'): Canvas } }).document;
    let c: Canvas;
    if (sel) {
      const img = doc.querySelector(sel) as Img;
      c = doc.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0);
    } else {
      c = [...doc.querySelectorAll('canvas')].sort((a, b) => b.width * b.height - a.width * a.height)[0]!;
    }
    if (c.width === 0 || c.height === 0) return { width: 0, height: 0, b64: '' };
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = '';
    for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]!);
    return { width: c.width, height: c.height, b64: btoa(s) };
  }, imgSelector ?? null);
  const d = Buffer.from(got.b64, 'base64');
  const rgb = new Uint32Array(d.length / 4);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (d[i * 4]! << 16) | (d[i * 4 + 1]! << 8) | d[i * 4 + 2]!;
  return { width: got.width, height: got.height, rgb };
}

test('an administrator sees the thumbnails, opens a console and types, ends the session with a reason, and plays its recording from the audit view', async () => {
  const head = await http('GET', `${service.apiUrl}/operator/`, {});
  assert.equal(head.status, 200);
  const csp = String(head.headers['content-security-policy']);
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(head.headers['cache-control'], 'no-store');
  const redirect = await http('GET', `${service.apiUrl}/operator`, {});
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers['location'], '/operator/');

  const o = await browser.open(`${service.apiUrl}/operator/`, { viewport: { width: 1366, height: 768 } });
  try {
    await signIn(o);
    assert.equal(await o.page.evaluate(() => (globalThis as unknown as { location: { href: string } }).location.href), `${service.apiUrl}/operator/`, 'no token in the address');
    // Both servers' thumbnails (two projects: a token for each), pixel for pixel the demo servers' screens.
    for (const [id, vnc] of [[ids.web, web], [ids.db, db]] as const) {
      const sel = `.card[data-server-id="${id}"] img[data-loaded]`;
      await o.page.waitForSelector(sel, { timeout: 20_000, state: 'attached' });
      const shot = await pixels(o.page, sel);
      assert.equal(shot.width * shot.height, vnc.console.framebuffer.length);
      assert.ok(new Set(shot.rgb).size > 1, 'the thumbnail is not blank');
      assert.equal(differingPixels(shot.rgb, vnc.console.framebuffer), 0, 'the thumbnail is the server\'s screen');
    }
    await saveScreenshot(o.page, 'operator-servers.png');
    assert.equal(await horizontalOverflow(o.page), 0, 'no horizontal overflow on a laptop screen');

    // Open web-01's console in a new tab, and type.
    const [tab] = await Promise.all([o.context.waitForEvent('page'), o.page.click(`.card[data-server-id="${ids.web}"] .open-console`)]);
    const tabErrors = watch(tab);
    assert.equal((await waitForState(tab, ['connected', 'failed'], 20_000)).state, 'connected');
    await tab.locator('canvas').click({ position: { x: 20, y: 20 } });
    await tab.keyboard.type('echo operator', { delay: 20 });
    await tab.keyboard.press('Enter');
    let typed: Uint32Array = new Uint32Array(0);
    for (let i = 0; i < 100; i++) {
      typed = (await pixels(tab)).rgb;
      if (web.console.cursor.row > 0 && differingPixels(typed, web.console.framebuffer) === 0) break;
      await sleep(100);
    }
    assert.equal(differingPixels(typed, web.console.framebuffer), 0, 'the console tab shows the typed text');

    // End it from the live sessions view, with a reason; the console tab says why.
    await o.page.click('#nav button[data-view="sessions"]');
    const row = o.page.locator(`#sessions-rows tr[data-server-id="${ids.web}"]`);
    await row.waitFor({ timeout: 10_000 });
    const sessionId = await row.getAttribute('data-session-id');
    assert.ok(sessionId);
    await row.locator('.end-session').click();
    await o.page.fill('#end-reason', 'maintenance window');
    await o.page.click('#end-confirm');
    const ended = await waitForState(tab, ['disconnected', 'failed'], 10_000);
    assert.equal(ended.reason, 'operator-ended');
    assert.match(String(await tab.textContent('#notice-detail')), /maintenance window/);
    await saveScreenshot(tab, 'operator-ended-console.png');
    assert.deepEqual(tabErrors, [], 'no errors or CSP violations on the console tab');
    await o.page.waitForSelector(`#sessions-rows tr[data-session-id="${sessionId}"]`, { state: 'detached', timeout: 10_000 });

    // The recording is closed with the session (its index says so).
    const token = await adminToken();
    for (let i = 0; i < 50; i++) {
      const list = await http('GET', `${service.apiUrl}/v1/${ids.p1}/recordings?session_id=${sessionId}`, { 'x-auth-token': token });
      if (list.json.recordings[0]?.ended) break;
      await sleep(100);
    }

    // The audit view finds the session; its recording plays to what was typed.
    await o.page.click('#nav button[data-view="audit"]');
    await o.page.fill('#audit-form input[name="server_id"]', ids.web);
    await o.page.selectOption('#audit-form select[name="kind"]', 'closed');
    await o.page.click('#audit-search');
    const closed = o.page.locator(`#audit-rows tr[data-kind="closed"][data-session-id="${sessionId}"]`);
    await closed.waitFor({ timeout: 10_000 });
    assert.match(String(await closed.textContent()), /maintenance window/);
    const [download] = await Promise.all([o.page.waitForEvent('download'), o.page.click('#audit-csv')]);
    const csv = readFileSync(String(await download.path()), 'utf8');
    assert.match(csv, /^\uFEFF?id,at,kind/);
    assert.ok(csv.includes(String(sessionId)), 'the CSV export holds the session');

    const [player] = await Promise.all([o.context.waitForEvent('page'), closed.locator('.play-session').click()]);
    const playerErrors = watch(player);
    await player.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
    const kinds = await player.$$eval('.marker', (els) => els.map((e) => (e as unknown as { dataset: { kind: string } }).dataset.kind));
    assert.ok(kinds.includes('key'), 'key events were recorded (the policy says so)');
    await player.selectOption('#speed', '8');
    await player.click('#btn-play');
    await player.waitForSelector('body[data-state="ended"]', { timeout: 20_000 });
    assert.equal(differingPixels((await pixels(player)).rgb, typed), 0, 'the played frame is what the console tab showed after typing');
    await saveScreenshot(player, 'operator-playback.png');
    assert.deepEqual(playerErrors, [], 'no errors or CSP violations on the player');

    // The recordings view lists it too.
    await o.page.click('#nav button[data-view="recordings"]');
    await o.page.locator(`#recordings-rows tr[data-session-id="${sessionId}"]`).waitFor({ timeout: 10_000 });
    assert.deepEqual(o.errors, [], 'no errors or CSP violations on the operator page');
  } finally {
    await o.close();
  }
});

test('a server with a serial port has an "open serial console" button: serial.html shows what the port printed, and typing reaches it', async () => {
  const o = await browser.open(`${service.apiUrl}/operator/`, { viewport: { width: 1366, height: 768 } });
  try {
    await signIn(o);
    const dbCard = `.card[data-server-id="${ids.db}"]`;
    await o.page.waitForSelector(`${dbCard} .open-serial`);
    assert.equal(await o.page.textContent(`${dbCard} .open-serial`), 'Open serial console');
    // web-01 has no serial port: no serial button.
    await o.page.waitForSelector(`.card[data-server-id="${ids.web}"] .open-console`);
    assert.equal(await o.page.locator(`.card[data-server-id="${ids.web}"] .open-serial`).count(), 0);
    const [tab] = await Promise.all([o.context.waitForEvent('page'), o.page.click(`${dbCard} .open-serial`)]);
    const tabErrors = watch(tab);
    // The tab opens blank at the click, then goes to the one-time URL.
    await tab.waitForURL(/\/serial\.html/, { timeout: 20_000 });
    assert.equal((await waitForState(tab, ['connected', 'failed'], 20_000)).state, 'connected');
    assert.match(tab.url(), /\/serial\.html\?lang=EN$/, 'the serial console page (the token out of its address)');
    const rows = "document.querySelector('.xterm-rows')?.textContent ?? ''";
    await waitForExpression(tab, `(${rows}).includes(${JSON.stringify(SERIAL_BANNER.trim())})`, 10_000);
    assert.equal(await tab.evaluate('document.body.dataset.role'), 'writer');
    await tab.click('#term');
    await tab.keyboard.type('ok');
    await waitForExpression(tab, `(${rows}).includes('[o][k]')`, 10_000);
    await saveScreenshot(tab, 'operator-serial.png');
    assert.deepEqual(tabErrors, [], 'no errors or CSP violations on the serial tab');
    assert.deepEqual(o.errors, [], 'no errors or CSP violations on the operator page');
    await tab.close();
  } finally {
    await o.close();
  }
});

test('a user who is not a domain administrator is told so plainly', async () => {
  const o = await browser.open(`${service.apiUrl}/operator/`);
  try {
    await signIn(o, 'viewer', 'denied');
    assert.equal(await o.page.isVisible('#denied'), true);
    assert.match(String(await o.page.textContent('#denied')), /domain administrators/);
    assert.equal(await o.page.isVisible('#app'), false);
    // The admin API's 403 is logged by the browser as a failed load; nothing else.
    assert.deepEqual(o.errors.filter((e) => !/status of 403/.test(e)), []);
  } finally {
    await o.close();
  }
});

test('in Chinese, on a phone (390x844): no horizontal overflow in any view', async () => {
  const o = await browser.open(`${service.apiUrl}/operator/?lang=ZH`, { viewport: { width: 390, height: 844 } });
  const overflow = (): Promise<number> => horizontalOverflow(o.page);
  try {
    assert.equal(await o.page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await o.page.textContent('#login-submit'), '登录');
    assert.equal(await overflow(), 0, 'login view');
    await signIn(o);
    assert.equal(await o.page.textContent('#nav button[data-view="servers"]'), '云服务器');
    await o.page.waitForSelector(`.card[data-server-id="${ids.db}"]`);
    assert.equal(await o.page.textContent(`.card[data-server-id="${ids.db}"] .open-serial`), '打开串口控制台');
    for (const v of ['servers', 'sessions', 'audit', 'recordings']) {
      await o.page.click(`#nav button[data-view="${v}"]`);
      if (v === 'audit') await o.page.click('#audit-search');
      await sleep(300);
      assert.equal(await overflow(), 0, `${v} view`);
    }
    await saveScreenshot(o.page, 'operator-phone-zh.png');
    // Thumbnails in this second sign-in may meet the per-server screenshot limit: that is logged as a 429.
    assert.deepEqual(o.errors.filter((e) => !/status of 429/.test(e)), []);
  } finally {
    await o.close();
  }
});

test('the demo (`serve --demo`): its user signs in with what was printed and sees the demo servers, their screens as thumbnails', async () => {
  const dataDir = tempDir();
  const demo = await startCli(['serve', '--demo', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], { ECS_CONSOLE_DATA_DIR: dataDir });
  const o = await browser.open(`${demo.apiUrl}/operator/`, { viewport: { width: 1366, height: 768 } });
  try {
    const info = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8')) as { domain: string; user: string; password: string; projectId: string; projectName: string; servers: Array<{ id: string; status: string }> };
    assert.match(demo.stderr() + demo.stdout(), new RegExp(`Operator page +${demo.apiUrl}/operator/ +\\(account ${info.domain}, user ${info.user}, project ${info.projectName}\\)`));
    await o.page.waitForSelector('body[data-state="login"]');
    await o.page.fill('#login-domain', info.domain);
    await o.page.fill('#login-user', info.user);
    await o.page.fill('#login-password', info.password);
    await o.page.fill('#login-project', info.projectName);
    await o.page.click('#login-submit');
    await o.page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
    const token = String((await http('POST', `${demo.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: info.user, password: info.password, domain: { name: info.domain } } } }, scope: { project: { id: info.projectId } } },
    }))).headers['x-subject-token']);
    for (const srv of info.servers) {
      const card = `.card[data-server-id="${srv.id}"]`;
      await o.page.waitForSelector(card);
      if (srv.status !== 'ACTIVE') {
        assert.match(String(await o.page.textContent(`${card} .thumb-note`)), /Not running/);
        continue;
      }
      const sel = `${card} img[data-loaded]`;
      await o.page.waitForSelector(sel, { timeout: 20_000, state: 'attached' });
      const thumb = await pixels(o.page, sel);
      assert.ok(new Set(thumb.rgb).size > 1, 'the thumbnail is not blank');
      // The server's screen now, through the screenshot call: the same but for the blinking cursor and the clock.
      const shot = await http('GET', `${demo.apiUrl}/v1/${info.projectId}/cloudservers/${srv.id}/screenshot`, { 'x-auth-token': token });
      assert.equal(shot.status, 200, shot.text);
      const png = PNG.sync.read(shot.body);
      assert.deepEqual([thumb.width, thumb.height], [png.width, png.height]);
      const now = new Uint32Array(png.width * png.height);
      for (let i = 0; i < now.length; i++) now[i] = (png.data[i * 4]! << 16) | (png.data[i * 4 + 1]! << 8) | png.data[i * 4 + 2]!;
      assert.ok(differingPixels(thumb.rgb, now) < now.length / 100, 'the thumbnail is the server\'s screen');
    }
    await saveScreenshot(o.page, 'operator-demo.png');
    assert.deepEqual(o.errors, []);
  } finally {
    await o.close();
    demo.child.kill('SIGTERM');
    await demo.exited;
  }
});
