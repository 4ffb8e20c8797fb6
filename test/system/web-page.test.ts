// The console page in Debian's Chromium, against a test-only stand-in for the proxy that serves
// the real static files and speaks RFB 3.8 (test/helpers/browser-test-server.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  FB_HEIGHT, FB_WIDTH, PATTERN, startBrowserTestServer, type BrowserTestServer, type KeyEventRecord, type Rgb, type TokenScript,
} from '../helpers/browser-test-server.js';
import {
  canvasSize, launchBrowser, readCanvasPixels, saveScreenshot, waitForExpression, waitForState, type BrowserHarness, type OpenedPage,
} from '../helpers/browser.js';

// X11 keysyms (keysymdef.h).
const XK = { Control_L: 0xffe3, Alt_L: 0xffe9, Delete: 0xffff, Shift_L: 0xffe1, Return: 0xff0d } as const;

const down = (keysym: number): KeyEventRecord => ({ down: true, keysym });
const up = (keysym: number): KeyEventRecord => ({ down: false, keysym });
const press = (keysym: number): KeyEventRecord[] => [down(keysym), up(keysym)];
const shifted = (keysym: number): KeyEventRecord[] => [down(XK.Shift_L), down(keysym), up(keysym), up(XK.Shift_L)];

describe('console page in Chromium', () => {
  let server: BrowserTestServer;
  let browser: BrowserHarness;

  before(async () => {
    server = await startBrowserTestServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A fresh token with `script`, and the page opened on it. */
  async function openWith(script: TokenScript, lang = 'EN'): Promise<{ token: string; opened: OpenedPage }> {
    const token = randomUUID();
    server.setToken(token, script);
    const opened = await browser.open(server.pageUrl(token, lang));
    return { token, opened };
  }

  const text = async (o: OpenedPage, selector: string): Promise<string> => (await o.page.locator(selector).textContent()) ?? '';

  test('connects, shows the framebuffer, hides the token, renders the server name as text', async () => {
    const name = '<img src=x onerror="window.__xss=1">web-01';
    const { token, opened } = await openWith({ name });
    try {
      const { page } = opened;
      assert.equal((await waitForState(page, 'connected')).reason, null);

      // The token left the address bar at once; lang stayed.
      const url = new URL(page.url());
      assert.equal(url.searchParams.get('token'), null);
      assert.ok(!page.url().includes(token));
      assert.equal(url.searchParams.get('lang'), 'EN');
      assert.equal(url.pathname, '/vnc_auto.html');

      // The token travelled only in the page URL, the pre-check body and the WebSocket URL: never
      // in a Referer or another request.
      const page0 = server.requests.findIndex((r) => r.url.includes(token));
      assert.ok(page0 >= 0);
      for (const r of server.requests.slice(page0 + 1)) {
        assert.ok(!r.url.includes(token), r.url);
        assert.equal(r.referer, undefined, `${r.method} ${r.url} sent a Referer`);
      }
      assert.ok(server.requests.slice(page0).some((r) => r.url === '/novnc/core/rfb.js'));

      // The name is text: no element was made from it, nothing ran.
      assert.equal(await text(opened, '#server-name'), name);
      assert.equal(await page.locator('img').count(), 0);
      assert.equal(await page.evaluate('typeof window.__xss'), 'undefined');
      assert.equal(await page.title(), `${name} – Remote console`);
      assert.equal(await text(opened, '#status'), 'Connected');
      assert.equal(await page.locator('#notice').isVisible(), false);

      // The WebSocket: one upgrade, subprotocol "binary", shared session.
      const session = await server.waitForSession(token);
      await session.initialized;
      assert.equal(session.offeredProtocols, 'binary');
      assert.equal(session.shared, true);
      assert.deepEqual(server.upgrades.filter((t) => t === token), [token]);
      assert.equal(server.infoRequests.filter((t) => t === token).length, 1);

      // The canvas holds the server's pattern, pixel for pixel.
      assert.deepEqual(await canvasSize(page), { width: FB_WIDTH, height: FB_HEIGHT });
      const probes: Array<[number, number, Rgb]> = [
        [0, 0, PATTERN.topLeft], [FB_WIDTH / 4, FB_HEIGHT / 4, PATTERN.topLeft], [FB_WIDTH / 2 - 1, FB_HEIGHT / 2 - 1, PATTERN.topLeft],
        [FB_WIDTH / 2, 0, PATTERN.topRight], [FB_WIDTH - 1, FB_HEIGHT / 4, PATTERN.topRight],
        [0, FB_HEIGHT / 2, PATTERN.bottomLeft], [FB_WIDTH / 4, FB_HEIGHT - 1, PATTERN.bottomLeft],
        [FB_WIDTH / 2, FB_HEIGHT / 2, PATTERN.bottomRight], [FB_WIDTH - 1, FB_HEIGHT - 1, PATTERN.bottomRight],
      ];
      await waitForPixels(opened, probes);

      await saveScreenshot(page, 'console-connected');

      // Scaled to the window by default: the canvas is drawn larger than the framebuffer.
      const box = await page.locator('canvas').boundingBox();
      assert.ok(box && box.width > FB_WIDTH * 1.5, `canvas drawn ${box?.width} px wide`);
      await page.locator('#chk-scale').uncheck();
      await waitForExpression(page, 'document.querySelector("canvas").clientWidth === 320');

      // Full screen on the screen container, and back.
      // (The label follows the fullscreenchange event, which may come a frame after the element.)
      await page.locator('#btn-fullscreen').click();
      await waitForExpression(page, 'document.fullscreenElement && document.fullscreenElement.id === "screen"');
      await page.locator('#btn-fullscreen', { hasText: 'Exit full screen' }).waitFor();
      await page.evaluate('document.exitFullscreen()');
      await waitForExpression(page, 'document.fullscreenElement === null');
      await page.locator('#btn-fullscreen', { hasText: /^Full screen$/ }).waitFor();
      assert.deepEqual(opened.errors, [], 'no page errors, no CSP violations');
    } finally {
      await opened.close();
    }
  });

  test('keyboard input, Ctrl+Alt+Del, typed text and clipboard paste reach the server', async () => {
    const { token, opened } = await openWith({});
    try {
      const { page } = opened;
      await waitForState(page, 'connected');
      const session = await server.waitForSession(token);

      // Focus is on the canvas after connect, so typing goes to the server.
      assert.equal(await page.evaluate('document.activeElement && document.activeElement.tagName'), 'CANVAS');
      await page.keyboard.press('a');
      await session.waitFor((s) => s.keyEvents.length >= 2, 'the typed key');
      assert.deepEqual(session.keyEvents.splice(0), press(0x61));

      await page.locator('#btn-cad').click();
      await session.waitFor((s) => s.keyEvents.length >= 6, 'Ctrl+Alt+Del');
      assert.deepEqual(session.keyEvents.splice(0), [
        down(XK.Control_L), down(XK.Alt_L), down(XK.Delete), up(XK.Delete), up(XK.Alt_L), up(XK.Control_L),
      ]);

      // "Type text": Shift held for capitals and shifted symbols, newline as Return.
      await page.locator('#btn-text').click();
      assert.equal(await page.locator('#text-dialog').isVisible(), true);
      await page.locator('#text-input').fill('Hi!\n');
      await page.locator('#btn-type').click();
      const typed = [...shifted(0x48), ...press(0x69), ...shifted(0x21), ...press(XK.Return)];
      await session.waitFor((s) => s.keyEvents.length >= typed.length, 'the typed text');
      assert.deepEqual(session.keyEvents.splice(0), typed);
      await page.locator('#text-dialog').waitFor({ state: 'hidden' });

      await page.locator('#btn-text').click();
      await page.locator('#text-input').fill('pasted text');
      await saveScreenshot(page, 'console-text-dialog');
      await page.locator('#btn-paste').click();
      await session.waitFor((s) => s.cutText.length >= 1, 'the clipboard text');
      assert.deepEqual(session.cutText, ['pasted text']);
      await page.locator('#text-dialog').waitFor({ state: 'hidden' });
      // Back on the canvas after the dialog (its close event comes a task after it hides).
      await waitForExpression(page, 'document.activeElement && document.activeElement.tagName === "CANVAS"', 2000);
      assert.deepEqual(opened.errors, []);
    } finally {
      await opened.close();
    }
  });

  test('lang=ZH shows Chinese', async () => {
    const { opened } = await openWith({}, 'zh-CN');
    try {
      const { page } = opened;
      await waitForState(page, 'connected');
      assert.equal(await text(opened, '#status'), '已连接');
      assert.equal(await text(opened, '#btn-fullscreen'), '全屏');
      assert.equal(await page.evaluate('document.documentElement.lang'), 'zh-CN');
      assert.equal(new URL(page.url()).search, '?lang=zh-CN');
    } finally {
      await opened.close();
    }
    const used = await openWith({ info: { status: 200, body: { state: 'used' } } }, 'ZH');
    try {
      assert.deepEqual(await waitForState(used.opened.page, 'failed'), { state: 'failed', reason: 'token-used' });
      assert.equal(await text(used.opened, '#notice-reason'), '该远程登录链接已被使用。');
      assert.match(await text(used.opened, '#notice-advice'), /重新获取远程登录地址/);
      await saveScreenshot(used.opened.page, 'console-token-used-zh');
    } finally {
      await used.opened.close();
    }
  });

  test('a refused pre-check shows its reason and opens no WebSocket', async () => {
    const cases: Array<[TokenScript['info'], string, RegExp]> = [
      [{ status: 200, body: { state: 'used' } }, 'token-used', /already been used/],
      [{ status: 200, body: { state: 'expired' } }, 'token-expired', /expired/],
      [{ status: 200, body: { state: 'unknown' } }, 'token-unknown', /not valid/],
      [{ status: 200, body: { state: 'server-not-active' } }, 'server-not-active', /not running/],
      [{ status: 429, body: { state: 'throttled' } }, 'throttled', /Too many attempts/],
    ];
    for (const [info, reason, pattern] of cases) {
      const { token, opened } = await openWith({ info });
      try {
        const { page } = opened;
        assert.deepEqual(await waitForState(page, 'failed'), { state: 'failed', reason });
        assert.match(await text(opened, '#notice-reason'), pattern);
        assert.match(await text(opened, '#notice-advice'), reason === 'throttled' ? /try again/ : /new remote login URL/);
        assert.equal(await page.locator('#btn-retry').isVisible(), reason === 'throttled', reason);
        assert.equal(await page.locator('#btn-cad').isDisabled(), true);
        assert.equal(await page.locator('canvas').count(), 0);
        assert.ok(!page.url().includes(token));
        assert.equal(server.upgrades.filter((t) => t === token).length, 0, `${reason}: no WebSocket`);
      } finally {
        await opened.close();
      }
    }
  });

  test('throttled, then "Try again" checks again and connects', async () => {
    const token = randomUUID();
    server.setToken(token, { info: { status: 429, body: { state: 'throttled' } } });
    const opened = await browser.open(server.pageUrl(token));
    try {
      await waitForState(opened.page, 'failed');
      server.setToken(token, {});
      await opened.page.locator('#btn-retry').click();
      await waitForState(opened.page, 'connected');
      assert.equal(server.infoRequests.filter((t) => t === token).length, 2);
      assert.equal(server.upgrades.filter((t) => t === token).length, 1);
    } finally {
      await opened.close();
    }
  });

  test('a security failure then close 4101 says the console service could not log in and the operator must act', async () => {
    const { opened } = await openWith({
      session: { kind: 'security-failure', at: 'result', reason: 'Authentication to the server console failed', code: 4101, closeReason: 'backend authentication failed' },
    });
    try {
      const { page } = opened;
      assert.deepEqual(await waitForState(page, 'failed'), { state: 'failed', reason: 'backend-auth-failed' });
      assert.equal(await text(opened, '#notice-reason'), 'The console service could not log in to the server’s console.');
      assert.match(await text(opened, '#notice-advice'), /a new remote login URL would fail the same way/);
      assert.equal(await page.locator('#btn-retry').isVisible(), false);
      assert.equal(await text(opened, '#status'), 'Not connected');
      await saveScreenshot(page, 'console-auth-failed');
    } finally {
      await opened.close();
    }
  });

  test('no security types then close 4100 says the console service could not reach the server and the operator must act', async () => {
    const { opened } = await openWith({
      session: { kind: 'security-failure', at: 'types', reason: 'The server console is unreachable', code: 4100, closeReason: 'backend unreachable' },
    });
    try {
      assert.deepEqual(await waitForState(opened.page, 'failed'), { state: 'failed', reason: 'backend-unreachable' });
      assert.equal(await text(opened, '#notice-reason'), 'The console service could not reach the server’s console.');
      assert.match(await text(opened, '#notice-advice'), /administrator of the console service/);
    } finally {
      await opened.close();
    }
  });

  test('a security failure with no close code of ours shows the proxy\'s reason as a detail', async () => {
    const { opened } = await openWith({ session: { kind: 'security-failure', at: 'result', reason: 'Proxy says <b>no</b>' } });
    try {
      assert.deepEqual(await waitForState(opened.page, 'failed'), { state: 'failed', reason: 'security-failure' });
      assert.equal(await text(opened, '#notice-reason'), 'The console service refused the connection.');
      assert.equal(await text(opened, '#notice-detail'), 'Details: Proxy says <b>no</b>');
      assert.equal(await opened.page.locator('b').count(), 0);
    } finally {
      await opened.close();
    }
  });

  test('an upgrade refused with a plain HTTP answer shows "could not connect"', async () => {
    const { token, opened } = await openWith({ session: { kind: 'refuse-upgrade', status: 403 } });
    try {
      assert.deepEqual(await waitForState(opened.page, 'failed'), { state: 'failed', reason: 'connect-failed' });
      assert.equal(await text(opened, '#notice-reason'), 'Could not connect to the console service.');
      assert.equal(await opened.page.locator('#btn-retry').isVisible(), true);
      // Never retried on its own.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(server.upgrades.filter((t) => t === token).length, 1);
    } finally {
      await opened.close();
    }
  });

  test('a live session closed by the server with 4202 shows the idle timeout', async () => {
    const { token, opened } = await openWith({});
    try {
      await waitForState(opened.page, 'connected');
      const session = await server.waitForSession(token);
      session.close(4202, 'idle timeout');
      assert.deepEqual(await waitForState(opened.page, 'disconnected'), { state: 'disconnected', reason: 'idle-timeout' });
      assert.match(await text(opened, '#notice-reason'), /no input for too long/);
      assert.equal(await opened.page.locator('#btn-cad').isDisabled(), true);
      assert.equal(server.upgrades.filter((t) => t === token).length, 1, 'no automatic reconnect');
    } finally {
      await opened.close();
    }
  });

  test('a URL without a token fails at once, without asking the proxy', async () => {
    const before = server.infoRequests.length;
    const opened = await browser.open(`${server.origin}/vnc_auto.html?lang=EN`);
    try {
      assert.deepEqual(await waitForState(opened.page, 'failed'), { state: 'failed', reason: 'token-missing' });
      assert.equal(server.infoRequests.length, before);
    } finally {
      await opened.close();
    }
  });
});

/** Waits until every probe reads its colour (opaque); fails with what the canvas holds. */
async function waitForPixels(opened: OpenedPage, probes: Array<[number, number, Rgb]>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await readCanvasPixels(opened.page, probes.map(([x, y]) => [x, y] as const));
    const want = probes.map(([, , rgb]) => [...rgb, 255]);
    try {
      assert.deepEqual(got, want);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
