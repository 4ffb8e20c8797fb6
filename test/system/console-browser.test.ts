/**
 * The whole path as a person uses it: the API returns a URL, Debian's Chromium (driven by
 * playwright-core) opens it, our page connects through the proxy to a VNC server. Backends: the
 * built-in demo server (pixels compared with what it draws; typing reaches it), TigerVNC's Xvnc
 * and QEMU. Screenshots go to test-artifacts/ (and docs/img/console.png with
 * ECS_CONSOLE_UPDATE_DOCS_IMG=1). Fails, never skips, when a package is missing.
 */
import type { StaticTarget } from '../../src/inventory/types.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { DemoVncServer } from '../../src/demo/index.js';
import { launchBrowser, readCanvasPixels, canvasSize, saveScreenshot, waitForState, waitForExpression, type BrowserHarness } from '../helpers/browser.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { startQemu, startXvnc, type RealVnc, type XvncServer } from '../helpers/real-vnc.js';
import { seed, startStack, type Seed, type Stack } from '../helpers/stack.js';

let browser: BrowserHarness;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const rgb = (p: readonly number[]): number => ((p[0]! << 16) | (p[1]! << 8) | p[2]!) >>> 0;

describe('demo backend', () => {
  let vnc: DemoVncServer;
  let stack: Stack;
  let s: Seed;
  const url = async (id = s.active.id, lang?: string): Promise<string> => {
    const u = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), id)).remote_console.url;
    return lang ? u.replace('lang=EN', `lang=${lang}`) : u;
  };
  before(async () => {
    vnc = new DemoVncServer({ name: 'web-01', password: 'demopw', width: 800, height: 480 });
    const { port } = await vnc.listen(0, '127.0.0.1');
    stack = await startStack();
    s = await seed(stack.app, { host: '127.0.0.1', port, auth: 'vnc-password', password: 'demopw' });
  });
  after(async () => {
    await stack?.stop();
    await vnc?.close();
  });

  test('the canvas shows what the backend draws; typing "hello" reaches it and changes the screen there', async () => {
    const o = await browser.open(await url(), { viewport: { width: 1024, height: 640 } });
    try {
      assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected');
      assert.doesNotMatch(o.page.url(), /token=/, 'the token is removed from the address bar');
      assert.deepEqual(await canvasSize(o.page), { width: 800, height: 480 });
      const con = vnc.console;
      // Sample the boot log area (static text), away from the cursor and the status line.
      const points: Array<[number, number]> = [];
      for (let y = 2; y < con.cellHeight * 8; y += 3) for (let x = 1; x < 780; x += 37) points.push([x, y]);
      await waitForExpression(o.page, 'document.querySelector("canvas") !== null');
      let mismatches = Infinity;
      for (let i = 0; i < 50 && mismatches > 0; i++) {
        const px = await readCanvasPixels(o.page, points);
        mismatches = px.filter((p, k) => rgb(p) !== (con.framebuffer[points[k]![1] * con.width + points[k]![0]]! & 0xffffff)).length;
        if (mismatches > 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(mismatches, 0, `canvas differs from the backend's framebuffer at ${mismatches} of ${points.length} points`);
      assert.ok(new Set(points.map(([x, y]) => con.framebuffer[y * con.width + x])).size > 1, 'the sampled area is not one colour');

      const { row, col } = con.cursor;
      const region: Array<[number, number]> = [];
      for (let x = col * con.cellWidth; x < (col + 5) * con.cellWidth; x += 2) for (let y = row * con.cellHeight; y < (row + 1) * con.cellHeight; y += 2) region.push([x, y]);
      const before = (await readCanvasPixels(o.page, region)).map(rgb);
      await o.page.locator('canvas').click();
      await o.page.keyboard.type('hello', { delay: 30 });
      const typed = (): string => String.fromCharCode(...[0, 1, 2, 3, 4].map((i) => con.charAt(row, col + i)));
      for (let i = 0; i < 50 && typed() !== 'hello'; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(typed(), 'hello', 'the keys reached the backend');
      let changed = 0;
      for (let i = 0; i < 50 && changed < 20; i++) {
        const now = (await readCanvasPixels(o.page, region)).map(rgb);
        changed = now.filter((v, k) => v !== before[k]).length;
        if (changed < 20) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(changed >= 20, `the screen changed where the text is drawn (${changed} pixels)`);
      const shot = await saveScreenshot(o.page, 'console.png');
      if (process.env['ECS_CONSOLE_UPDATE_DOCS_IMG'] === '1') {
        mkdirSync(new URL('../../../docs/img/', import.meta.url), { recursive: true });
        copyFileSync(shot, new URL('../../../docs/img/console.png', import.meta.url));
      }
      assert.deepEqual(o.errors, [], 'no page errors or CSP violations');
    } finally {
      await o.close();
    }
  });

  test('opening the same URL twice: the second page says the link was already used', async () => {
    const u = await url();
    const first = await browser.open(u);
    assert.equal((await waitForState(first.page, ['connected', 'failed'], 15_000)).state, 'connected');
    const second = await browser.open(u);
    const st = await waitForState(second.page, ['failed', 'connected'], 15_000);
    assert.deepEqual(st, { state: 'failed', reason: 'token-used' });
    assert.match(await second.page.locator('body').innerText(), /already/i);
    await first.close();
    await second.close();
  });

  test('stopping the server ends the console with a readable reason', async () => {
    const o = await browser.open(await url());
    assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected');
    await stack.app.services.inventory.setStatus(s.active.id, 'SHUTOFF');
    const st = await waitForState(o.page, ['disconnected', 'failed'], 5000);
    assert.equal(st.reason, 'server-unavailable');
    await saveScreenshot(o.page, 'console-server-stopped.png');
    await stack.app.services.inventory.setStatus(s.active.id, 'ACTIVE');
    await o.close();
  });

  test('backend down: the page shows that the server\'s console could not be reached', async () => {
    const down = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'down', console: { host: '127.0.0.1', port: 1, auth: 'none' } });
    const o = await browser.open(await url(down.id));
    const st = await waitForState(o.page, ['failed', 'connected'], 15_000);
    assert.deepEqual(st, { state: 'failed', reason: 'backend-unreachable' });
    await o.close();
  });

  test('wrong backend password: the page says authentication to the server failed', async () => {
    const target = (await stack.app.services.inventory.getServer(s.active.id)).console as StaticTarget;
    const wrong = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'wrong', console: { host: target.host, port: target.port, auth: 'vnc-password', password: 'nopenope' } });
    const o = await browser.open(await url(wrong.id));
    const st = await waitForState(o.page, ['failed', 'connected'], 15_000);
    assert.deepEqual(st, { state: 'failed', reason: 'backend-auth-failed' });
    await o.close();
  });

  test('the backend closing mid-session: the page says the server\'s VNC connection closed; a parallel page carries on', async () => {
    const short = new DemoVncServer({ name: 'short', width: 320, height: 200 });
    const { port } = await short.listen(0, '127.0.0.1');
    const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'short', console: { host: '127.0.0.1', port, auth: 'none' } });
    const parallel = await browser.open(await url());
    const o = await browser.open(await url(srv.id));
    assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected');
    assert.equal((await waitForState(parallel.page, ['connected', 'failed'], 15_000)).state, 'connected');
    await short.close();
    assert.deepEqual(await waitForState(o.page, ['disconnected', 'failed'], 5000), { state: 'disconnected', reason: 'backend-closed' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await waitForState(parallel.page, ['connected', 'disconnected', 'failed'], 1000)).state, 'connected');
    await o.close();
    await parallel.close();
  });

  test('the page is Chinese with lang=ZH', async () => {
    const o = await browser.open(await url(s.active.id, 'ZH'));
    assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected');
    assert.equal(await o.page.evaluate(() => (globalThis as unknown as { document: { documentElement: { lang: string } } }).document.documentElement.lang), 'zh-CN');
    await o.close();
  });
});

describe('real backends in the browser', () => {
  let xvnc: XvncServer;
  let qemu: RealVnc;
  let stack: Stack;
  let s: Seed;
  before(async () => {
    xvnc = await startXvnc('xvncpw2', '800x600');
    await xvnc.paint('red');
    qemu = await startQemu('qemupw2');
    stack = await startStack();
    s = await seed(stack.app, { host: '127.0.0.1', port: xvnc.port, auth: 'vnc-password', password: 'xvncpw2' });
  });
  after(async () => {
    await stack?.stop();
    await xvnc?.stop();
    await qemu?.stop();
  });

  test('Xvnc: the canvas is the red root window', async () => {
    const u = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url;
    const o = await browser.open(u);
    assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected');
    assert.deepEqual(await canvasSize(o.page), { width: 800, height: 600 });
    await waitForExpression(o.page, '(() => { const c = document.querySelector("canvas"); const d = c.getContext("2d").getImageData(400, 300, 1, 1).data; return d[0] === 255 && d[1] === 0 && d[2] === 0; })()', 10_000);
    const px = await readCanvasPixels(o.page, [[5, 5], [795, 595], [400, 300]]);
    for (const p of px) assert.equal(rgb(p), 0xff0000);
    await saveScreenshot(o.page, 'console-xvnc.png');
    await o.close();
  });

  test('QEMU: noVNC connects through the proxy and draws the guest screen', async () => {
    const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'qemu-vm', console: { host: '127.0.0.1', port: qemu.port, auth: 'vnc-password', password: 'qemupw2' } });
    const u = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), srv.id)).remote_console.url;
    const o = await browser.open(u);
    assert.equal((await waitForState(o.page, ['connected', 'failed'], 15_000)).state, 'connected');
    const { width, height } = await canvasSize(o.page);
    assert.ok(width >= 640 && height >= 400, `${width}x${height}`);
    await o.page.locator('canvas').click();
    await o.page.keyboard.press('Escape');
    // Still connected after input: QEMU's extended key events pass the proxy's validation.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await waitForState(o.page, ['connected', 'failed', 'disconnected'], 1000)).state, 'connected');
    await saveScreenshot(o.page, 'console-qemu.png');
    await o.close();
  });
});
