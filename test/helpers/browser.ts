/**
 * Browser harness for system tests: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), with helpers for the console page: open it, wait for its state, read the
 * noVNC canvas, take screenshots.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { findWebDir } from '../../src/web/static-handler.js';

/** Debian's Chromium (package `chromium`). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless, no sandbox (containers), and nothing that talks to the network on its own. */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]);

/** Where screenshots go (gitignored). */
export const ARTIFACTS_DIR = join(dirname(findWebDir()), 'test-artifacts');

/**
 * The few DOM members the helpers use inside `page.evaluate` (this build compiles Node code and has
 * no DOM lib). Type-only: the casts vanish when the function is serialized into the page.
 */
interface PageGlobals {
  document: {
    body: { dataset: Record<string, string | undefined> };
    querySelector(selector: 'canvas'): {
      width: number;
      height: number;
      getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
    } | null;
  };
}

/** The states the console page puts in body[data-state]. */
export type PageState = 'checking' | 'connecting' | 'connected' | 'failed' | 'disconnected';

/** One open page in its own browser context (own cookies and storage), with what it logged. */
export interface OpenedPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught exceptions and console errors (CSP violations land here), as text. */
  errors: string[];
  close(): Promise<void>;
}

export interface BrowserHarness {
  browser: Browser;
  /** Opens `url` in a fresh context and waits for the document to load. */
  open(url: string, opts?: { viewport?: { width: number; height: number } }): Promise<OpenedPage>;
  /** Closes every page and the browser. */
  close(): Promise<void>;
}

/**
 * Launches Chromium. Throws (so the suite fails, it does not skip) when the binary is missing.
 */
export async function launchBrowser(executablePath: string = CHROMIUM_PATH): Promise<BrowserHarness> {
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium not found at ${executablePath}: install the Debian package "chromium" (apt-get install chromium); the browser tests need it`);
  }
  const browser = await chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS], timeout: 30_000 });
  const opened = new Set<OpenedPage>();
  return {
    browser,
    async open(url, opts = {}) {
      const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1024, height: 720 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      const o: OpenedPage = {
        page,
        context,
        errors,
        async close() {
          opened.delete(o);
          await context.close();
        },
      };
      opened.add(o);
      await page.goto(url, { waitUntil: 'load' });
      return o;
    },
    async close() {
      for (const o of [...opened]) await o.close().catch(() => {});
      await browser.close();
    },
  };
}

/**
 * Waits until body[data-state] is one of `states`; returns the state and body[data-reason].
 * On timeout the error names the state the page is stuck in.
 */
export async function waitForState(page: Page, states: PageState | PageState[], timeoutMs = 10_000): Promise<{ state: PageState; reason: string | null }> {
  const wanted = Array.isArray(states) ? states : [states];
  try {
    await page.waitForFunction((w) => (w as string[]).includes((globalThis as unknown as PageGlobals).document.body.dataset.state ?? ''), wanted, { timeout: timeoutMs, polling: 50 });
  } catch (e) {
    const now = await pageState(page).catch(() => null);
    throw new Error(`page did not reach ${wanted.join('|')} within ${timeoutMs} ms (state ${now?.state}, reason ${now?.reason})`, { cause: e });
  }
  return pageState(page);
}

/**
 * Polls a JavaScript expression in the page until it is truthy. Use this, not
 * `page.waitForFunction('string')`: Playwright evaluates a polled string with eval inside the
 * page, which the console page's CSP (rightly) forbids.
 */
export async function waitForExpression(page: Page, expression: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** body[data-state] and body[data-reason] right now. */
export async function pageState(page: Page): Promise<{ state: PageState; reason: string | null }> {
  return page.evaluate(() => {
    const { dataset } = (globalThis as unknown as PageGlobals).document.body;
    return { state: dataset.state as PageState, reason: dataset.reason ?? null };
  });
}

/** Size of the noVNC canvas in framebuffer pixels (its drawing buffer, not its CSS size). */
export async function canvasSize(page: Page): Promise<{ width: number; height: number }> {
  return page.evaluate(() => {
    const c = (globalThis as unknown as PageGlobals).document.querySelector('canvas');
    if (!c) throw new Error('no canvas on the page');
    return { width: c.width, height: c.height };
  });
}

/** RGBA of the noVNC canvas at framebuffer coordinates, one entry per point. */
export async function readCanvasPixels(page: Page, points: ReadonlyArray<readonly [number, number]>): Promise<Array<[number, number, number, number]>> {
  return page.evaluate((pts) => {
    const c = (globalThis as unknown as PageGlobals).document.querySelector('canvas');
    const ctx = c?.getContext('2d');
    if (!c || !ctx) throw new Error('no 2d canvas on the page');
    return pts.map(([x, y]) => {
      const d = ctx.getImageData(x, y, 1, 1).data;
      return [d[0]!, d[1]!, d[2]!, d[3]!] as [number, number, number, number];
    });
  }, points.map((p) => [p[0], p[1]] as [number, number]));
}

/** Saves a PNG of the page under test-artifacts/ and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, name.endsWith('.png') ? name : `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** How many pixels of two RGB888 screens differ (every pixel when their sizes differ). */
export function differingPixels(a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
