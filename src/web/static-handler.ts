/**
 * Static files of the console page, as the console proxy serves them (same origin as the WebSocket):
 *
 * - `GET /vnc_auto.html`, `GET /vnc.html`: the page (`web/vnc_auto.html`), with the strict CSP;
 * - `GET /static/<file>`: the page's scripts and styles, from `web/`;
 * - `GET /novnc/core/...`, `GET /novnc/vendor/...`: the ES modules of the `@novnc/novnc` package;
 * - `GET /serial.html`: the serial console page (`web/serial.html`), with its CSP;
 * - `GET /xterm/lib/xterm.mjs`, `/xterm/css/xterm.css`, `/xterm-fit/lib/addon-fit.mjs`: xterm.js
 *   and its fit addon, from their npm packages (`@xterm/xterm`, `@xterm/addon-fit`).
 *
 * Every file is read into memory when the handler is created (about 0.6 MB in all): serving is a
 * lookup in a fixed table, so no request can reach a file that was not enumerated at startup, and
 * symlinks are resolved and confined once. Editing a file needs a restart.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pathOnly } from '../log.js';

/** Content-Security-Policy of the console page: nothing inline, nothing from another origin. */
export const CONSOLE_PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

/**
 * CSP of the serial console page: as the VNC page's, but xterm.js writes its own `<style>` elements
 * (its DOM renderer's colours and sizes), so inline styles are allowed there; scripts are still
 * ours only.
 */
export const SERIAL_PAGE_CSP = CONSOLE_PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** The serial console page's path. */
export const SERIAL_PAGE_PATH = '/serial.html';

/** The paths that serve a console page (noVNC's historical names, the API's `vnc_auto.html`, and the serial page). */
export const CONSOLE_PAGE_PATHS: readonly string[] = Object.freeze(['/vnc_auto.html', '/vnc.html', SERIAL_PAGE_PATH]);

/** The xterm.js files served, by URL path: [package, file in it]. */
const XTERM_FILES: ReadonlyArray<[string, string, string]> = [
  ['/xterm/lib/xterm.mjs', '@xterm/xterm', 'lib/xterm.mjs'],
  ['/xterm/css/xterm.css', '@xterm/xterm', 'css/xterm.css'],
  ['/xterm-fit/lib/addon-fit.mjs', '@xterm/addon-fit', 'lib/addon-fit.mjs'],
];

/** Answers one request; returns false, without touching `res`, when the path is not one of ours. */
export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface StaticHandlerOptions {
  /** Directory holding `vnc_auto.html` and its assets. Default: `<repo root>/web`. */
  webDir?: string;
  /** Root of the installed `@novnc/novnc` package (holds `core/` and `vendor/`). Default: resolved by Node. */
  novncDir?: string;
  /** `Cache-Control` max-age of the assets, in seconds (the page itself is always `no-store`). Default 300. */
  assetMaxAgeSeconds?: number;
  /** More pages (path -> file in `webDir`), served like the console page (its CSP, no-store): the playback page. */
  pages?: Readonly<Record<string, string>>;
}

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** Bounds on what is loaded, so a misconfigured directory (say `/`) fails at startup instead of eating memory. */
const MAX_FILES = 1000;
const MAX_TOTAL_BYTES = 32 * 1024 * 1024;

/** One path segment of an asset: no dot first (so no `.`, `..` or dotfile), nothing that needs quoting. */
const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Headers on every answer, errors included. */
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * Creates the handler. Throws at once when a directory is missing, lacks its key file
 * (`vnc_auto.html`, `core/rfb.js`) or holds more than the startup bounds allow.
 *
 * Mount it first in the proxy's `request` listener:
 * `if (!handleStatic(req, res)) { ...the proxy's own routes, then 404 }`.
 */
export function createStaticHandler(opts: StaticHandlerOptions = {}): StaticHandler {
  const webDir = opts.webDir ?? findWebDir();
  const novncDir = opts.novncDir ?? findNovncDir();
  const maxAge = opts.assetMaxAgeSeconds ?? 300;

  const budget = { files: 0, bytes: 0 };
  // NOTE: .html is never served under /static/: the page must only be reachable through the routes
  // that send its CSP and no-store headers.
  const web = loadTree(webDir, '', budget, (rel) => extname(rel) !== '.html');
  const novnc = new Map<string, StaticFile>();
  for (const top of ['core', 'vendor']) {
    for (const [rel, file] of loadTree(novncDir, top, budget, () => true)) novnc.set(rel, file);
  }
  if (!novnc.has('core/rfb.js')) throw new Error(`static files: ${novncDir} has no core/rfb.js (is @novnc/novnc installed?)`);
  const page = loadPage(webDir);
  const extraPages = new Map(Object.entries(opts.pages ?? {}).map(([path, file]) => [path, loadPage(webDir, file)]));
  // A web directory without the serial page (an older copy, a test fixture) serves the VNC page only.
  const serialPage = existsSync(join(webDir, 'serial.html')) ? loadPage(webDir, 'serial.html') : null;
  const xterm = new Map<string, StaticFile>();
  for (const [url, pkg, file] of XTERM_FILES) {
    const body = readFileSync(join(findXtermDir(pkg), file));
    budget.bytes += body.length;
    xterm.set(url, { body, type: CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }

  const pageHeaders = {
    ...COMMON_HEADERS,
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': CONSOLE_PAGE_CSP,
  };
  const assetCache = `public, max-age=${maxAge}`;

  return function handleStatic(req: IncomingMessage, res: ServerResponse): boolean {
    const target = req.url ?? '';
    // NOTE: CVE-2021-3654: a path starting with `//` (or `/\`, which browsers read the same way) is a
    // network-path reference; refuse it whatever follows, so no later code can turn it into a redirect.
    if (target.startsWith('//') || target.startsWith('/\\')) return sendError(res, 400, req.method);
    const path = pathOnly(target);

    let table: Map<string, StaticFile> | undefined;
    let rel = '';
    const xtermFile = xterm.get(path);
    if ((path === SERIAL_PAGE_PATH && serialPage) || xtermFile) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return sendError(res, 405, req.method);
      }
      if (!xtermFile) {
        send(res, 200, { ...pageHeaders, 'Content-Security-Policy': SERIAL_PAGE_CSP }, serialPage!, req.method);
        return true;
      }
      const headers = { ...COMMON_HEADERS, 'Content-Type': xtermFile.type, 'Cache-Control': assetCache, ETag: xtermFile.etag };
      send(res, req.headers['if-none-match'] === xtermFile.etag ? 304 : 200, headers, req.headers['if-none-match'] === xtermFile.etag ? undefined : xtermFile.body, req.method);
      return true;
    }
    const extraPage = extraPages.get(path);
    if (extraPage) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return sendError(res, 405, req.method);
      }
      send(res, 200, pageHeaders, extraPage, req.method);
      return true;
    }
    if (CONSOLE_PAGE_PATHS.includes(path) && path !== SERIAL_PAGE_PATH) {
      table = undefined;
    } else if (path.startsWith('/static/')) {
      table = web;
      rel = path.slice('/static/'.length);
    } else if (path.startsWith('/novnc/')) {
      table = novnc;
      rel = path.slice('/novnc/'.length);
    } else {
      return false;
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendError(res, 405, req.method);
    }

    if (table === undefined) {
      send(res, 200, pageHeaders, page, req.method);
      return true;
    }

    const key = normalizeAssetPath(rel);
    if (key === 'bad') return sendError(res, 400, req.method);
    const file = key === 'none' ? undefined : table.get(key);
    if (!file) return sendError(res, 404, req.method);

    const headers = { ...COMMON_HEADERS, 'Content-Type': file.type, 'Cache-Control': assetCache, ETag: file.etag };
    if (req.headers['if-none-match'] === file.etag) {
      send(res, 304, headers, undefined, req.method);
    } else {
      send(res, 200, headers, file.body, req.method);
    }
    return true;
  };
}

/**
 * The asset path (below its prefix, still percent-encoded) as a table key; `'none'` for what can
 * never be a file (empty segments: directories, `a//b`), `'bad'` for what is malformed or tries to
 * climb out (`..`, `%2e%2e`, `..%2f`, backslashes, NUL).
 */
function normalizeAssetPath(raw: string): string | 'none' | 'bad' {
  // NOTE: an encoded separator is never part of a real asset name; refusing it before decoding
  // means decoding cannot create a path structure the segment check below did not see.
  if (/%(2f|5c|00)/i.test(raw) || raw.includes('\\')) return 'bad';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return 'bad';
  }
  const segments = decoded.split('/');
  if (segments.some((s) => s !== '' && !SAFE_SEGMENT.test(s))) return 'bad';
  if (segments.some((s) => s === '')) return 'none';
  return segments.join('/');
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | undefined, method: string | undefined): void {
  res.writeHead(status, { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) });
  res.end(method === 'HEAD' ? undefined : body);
}

const ERROR_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request\n',
  404: 'Not Found\n',
  405: 'Method Not Allowed\n',
};

/** A fixed plain-text error. NOTE: never echoes the request's path or query (tokens travel in queries). */
function sendError(res: ServerResponse, status: 400 | 404 | 405, method: string | undefined): true {
  const body = Buffer.from(ERROR_TEXT[status] ?? '', 'utf8');
  send(res, status, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, body, method);
  return true;
}

function loadPage(webDir: string, name = 'vnc_auto.html'): Buffer {
  try {
    return readFileSync(join(webDir, name));
  } catch (e) {
    throw new Error(`static files: cannot read ${join(webDir, name)}`, { cause: e });
  }
}

/** Root of an installed xterm.js package (`@xterm/xterm`, `@xterm/addon-fit`). */
export function findXtermDir(pkg: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch (e) {
    throw new Error(`static files: ${pkg} is not installed (run npm ci)`, { cause: e });
  }
}

/**
 * Reads every servable file below `root/sub` into a table keyed by its path relative to `root`
 * (`core/rfb.js`). Files with an unknown extension or an unsafe name are left out.
 */
function loadTree(root: string, sub: string, budget: { files: number; bytes: number }, keep: (rel: string) => boolean): Map<string, StaticFile> {
  const out = new Map<string, StaticFile>();
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch (e) {
    throw new Error(`static files: directory ${root} does not exist`, { cause: e });
  }
  const walk = (dirRel: string): void => {
    for (const name of readdirSync(join(realRoot, dirRel)).sort()) {
      if (!SAFE_SEGMENT.test(name)) continue;
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const abs = join(realRoot, rel);
      let real = abs;
      if (lstatSync(abs).isSymbolicLink()) {
        // NOTE: a symlink is followed only when its target stays inside the root.
        try {
          real = realpathSync(abs);
        } catch {
          continue;
        }
        if (!real.startsWith(realRoot + sep)) continue;
      }
      const st = statSync(real);
      if (st.isDirectory()) {
        walk(rel);
        continue;
      }
      const type = CONTENT_TYPES[extname(name)];
      if (!st.isFile() || !type || !keep(rel)) continue;
      budget.files += 1;
      budget.bytes += st.size;
      if (budget.files > MAX_FILES || budget.bytes > MAX_TOTAL_BYTES) {
        throw new Error(`static files: ${root} holds more than ${MAX_FILES} files or ${MAX_TOTAL_BYTES} bytes; wrong directory?`);
      }
      const body = readFileSync(real);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      out.set(rel, { body, type, etag });
    }
  };
  try {
    if (sub) statSync(join(realRoot, sub));
  } catch (e) {
    throw new Error(`static files: ${join(root, sub)} does not exist`, { cause: e });
  }
  walk(sub);
  return out;
}

/** Directory of the first ancestor of `start` (itself included) whose package.json is named `name`. */
function findPackageRoot(start: string, name: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === name) return dir;
    } catch {
      // no or unreadable package.json here: keep climbing
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * `web/` at the repository root, found by climbing from this module (works from `dist/src/web/`
 * and from `src/web/` alike) to the package.json named `ecs-console`.
 */
export function findWebDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = findPackageRoot(here, 'ecs-console');
  if (!root) throw new Error(`static files: no ecs-console package.json above ${here}`);
  return join(root, 'web');
}

/**
 * Root of the installed `@novnc/novnc`. Its package.json has `"exports": "./core/rfb.js"`, so
 * `@novnc/novnc/package.json` cannot be resolved; resolve the entry point the way Node does and
 * climb to the package root from there.
 */
export function findNovncDir(): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('@novnc/novnc');
  } catch (e) {
    throw new Error('static files: @novnc/novnc is not installed (run npm ci)', { cause: e });
  }
  const root = findPackageRoot(dirname(entry), '@novnc/novnc');
  if (!root) throw new Error(`static files: no @novnc/novnc package.json above ${entry}`);
  return root;
}
