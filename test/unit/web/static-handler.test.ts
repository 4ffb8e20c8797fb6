import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  CONSOLE_PAGE_CSP, createStaticHandler, findNovncDir, findWebDir, type StaticHandler,
} from '../../../src/web/static-handler.js';
import { tempDir } from '../../helpers/stack.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends `path` byte for byte (node:http does not normalize it) and collects the answer. */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Mounts `handler` on a server whose own fallback answers 418, so "not handled" is visible. */
async function mount(handler: StaticHandler): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(418).end('fallback');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port };
}

const SECRET = 'TOP-SECRET-CONTENT';

describe('static handler on fixture directories', () => {
  let root: string;
  let server: Server;
  let port: number;

  before(async () => {
    root = tempDir('ecs-console-static-');
    const web = join(root, 'web');
    const novnc = join(root, 'novnc');
    mkdirSync(join(web, 'sub'), { recursive: true });
    mkdirSync(join(novnc, 'core', 'input'), { recursive: true });
    mkdirSync(join(novnc, 'vendor', 'pako'), { recursive: true });
    mkdirSync(join(novnc, 'docs'), { recursive: true });
    writeFileSync(join(root, 'secret.txt'), SECRET);
    writeFileSync(join(root, 'secret.js'), SECRET);
    writeFileSync(join(web, 'vnc_auto.html'), '<!DOCTYPE html><title>page</title>');
    writeFileSync(join(web, 'console.js'), 'export const x = 1;\n');
    writeFileSync(join(web, 'console.css'), 'body{}\n');
    writeFileSync(join(web, 'other.html'), '<p>not through /static</p>');
    writeFileSync(join(web, '.hidden.js'), SECRET);
    writeFileSync(join(web, 'notes.txt'), SECRET);
    writeFileSync(join(web, 'sub', 'a.js'), 'export const a = 1;\n');
    symlinkSync(join(root, 'secret.js'), join(web, 'escape.js'));
    symlinkSync(join(web, 'console.js'), join(web, 'alias.js'));
    symlinkSync(root, join(web, 'up'));
    writeFileSync(join(novnc, 'package.json'), '{"name":"@novnc/novnc"}');
    writeFileSync(join(novnc, 'README.md'), SECRET);
    writeFileSync(join(novnc, 'docs', 'API.md'), SECRET);
    writeFileSync(join(novnc, 'core', 'rfb.js'), 'export default class RFB {}\n');
    writeFileSync(join(novnc, 'core', 'input', 'keysym.js'), 'export default {};\n');
    writeFileSync(join(novnc, 'vendor', 'pako', 'inflate.js'), 'export {};\n');
    ({ server, port } = await mount(createStaticHandler({ webDir: web, novncDir: novnc })));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(root, { recursive: true, force: true });
  });

  function assertCommonHeaders(a: Answer): void {
    assert.equal(a.headers['x-content-type-options'], 'nosniff');
    assert.equal(a.headers['referrer-policy'], 'no-referrer');
    assert.equal(a.headers['x-frame-options'], 'DENY');
  }

  test('both page paths serve the page with its security headers, whatever the query', async () => {
    for (const path of ['/vnc_auto.html', '/vnc.html', '/vnc_auto.html?token=8b1e2c4a-0000-4000-8000-000000000000&lang=ZH&tLength=70']) {
      const a = await send(port, 'GET', path);
      assert.equal(a.status, 200, path);
      assert.equal(a.body, '<!DOCTYPE html><title>page</title>');
      assert.equal(a.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(a.headers['cache-control'], 'no-store');
      assert.equal(a.headers['content-security-policy'], CONSOLE_PAGE_CSP);
      assertCommonHeaders(a);
    }
  });

  test('the CSP is the contract one', () => {
    assert.equal(
      CONSOLE_PAGE_CSP,
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
    );
  });

  test('HEAD answers the headers with no body', async () => {
    const a = await send(port, 'HEAD', '/vnc_auto.html');
    assert.equal(a.status, 200);
    assert.equal(a.body, '');
    assert.equal(a.headers['content-length'], String('<!DOCTYPE html><title>page</title>'.length));
    assert.equal(a.headers['content-security-policy'], CONSOLE_PAGE_CSP);
    const js = await send(port, 'HEAD', '/static/console.js');
    assert.equal(js.status, 200);
    assert.equal(js.body, '');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  });

  test('methods other than GET and HEAD get 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['/vnc_auto.html', '/static/console.js', '/novnc/core/rfb.js']) {
        const a = await send(port, method, path);
        assert.equal(a.status, 405, `${method} ${path}`);
        assert.equal(a.headers['allow'], 'GET, HEAD');
        assert.equal(a.body, 'Method Not Allowed\n');
        assertCommonHeaders(a);
      }
    }
  });

  test('assets: content types, brief caching, ETag and 304', async () => {
    const js = await send(port, 'GET', '/static/console.js?v=1');
    assert.equal(js.status, 200);
    assert.equal(js.body, 'export const x = 1;\n');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=300');
    assertCommonHeaders(js);
    const css = await send(port, 'GET', '/static/console.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const etag = String(js.headers['etag']);
    assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/);
    const again = await send(port, 'GET', '/static/console.js', { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    assert.equal((await send(port, 'GET', '/static/sub/a.js')).status, 200);
  });

  test('noVNC files are served from core/ and vendor/ only', async () => {
    const rfb = await send(port, 'GET', '/novnc/core/rfb.js');
    assert.equal(rfb.status, 200);
    assert.equal(rfb.body, 'export default class RFB {}\n');
    assert.equal(rfb.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await send(port, 'GET', '/novnc/core/input/keysym.js')).status, 200);
    assert.equal((await send(port, 'GET', '/novnc/vendor/pako/inflate.js')).status, 200);
    for (const path of ['/novnc/package.json', '/novnc/README.md', '/novnc/docs/API.md', '/novnc/rfb.js']) {
      const a = await send(port, 'GET', path);
      assert.equal(a.status, 404, path);
      assert.ok(!a.body.includes(SECRET));
    }
  });

  test('traversal attempts never reach a file outside the roots', async () => {
    const attempts = [
      '/static/../secret.txt',
      '/static/../../secret.txt',
      '/static/%2e%2e/secret.txt',
      '/static/%2E%2E/secret.js',
      '/static/..%2fsecret.js',
      '/static/..%2Fsecret.js',
      '/static/%2e%2e%2fsecret.js',
      '/static/..\\secret.js',
      '/static/..%5csecret.js',
      '/static/%252e%252e/secret.js',
      '/static/%c0%ae%c0%ae/secret.js',
      '/static/sub/../../secret.js',
      '/static/./console.js',
      '/static/console.js%00.txt',
      '/static/%00',
      '/novnc/core/../../secret.js',
      '/novnc/core/%2e%2e/%2e%2e/secret.js',
      '/novnc/%2e%2e/secret.js',
      '/static/up/secret.js',
      '/static/up/web/console.js',
    ];
    for (const path of attempts) {
      const a = await send(port, 'GET', path);
      assert.ok(a.status === 400 || a.status === 404, `${path} -> ${a.status}`);
      assert.ok(!a.body.includes(SECRET), path);
      assert.equal(a.headers['location'], undefined, path);
      assert.equal(a.headers['content-type'], 'text/plain; charset=utf-8', path);
    }
    // Malformed and climbing paths are 400 specifically.
    for (const path of ['/static/%2e%2e/secret.txt', '/static/..%2fsecret.js', '/static/%c0%ae%c0%ae/x.js', '/static/..\\secret.js']) {
      assert.equal((await send(port, 'GET', path)).status, 400, path);
    }
  });

  test('symlinks: followed inside the root, never out of it', async () => {
    const alias = await send(port, 'GET', '/static/alias.js');
    assert.equal(alias.status, 200);
    assert.equal(alias.body, 'export const x = 1;\n');
    const escape = await send(port, 'GET', '/static/escape.js');
    assert.equal(escape.status, 404);
    assert.ok(!escape.body.includes(SECRET));
  });

  test('dotfiles, unknown types and .html under /static are not served', async () => {
    for (const path of ['/static/.hidden.js', '/static/notes.txt', '/static/other.html', '/static/vnc_auto.html']) {
      const a = await send(port, 'GET', path);
      assert.ok(a.status === 400 || a.status === 404, `${path} -> ${a.status}`);
      assert.ok(!a.body.includes(SECRET) && !a.body.includes('<'), path);
    }
  });

  test('paths starting with // are refused with 400 (CVE-2021-3654)', async () => {
    for (const path of ['//evil.example', '//evil.example/', '//evil.example/%2e%2e', '//', '///static/console.js', '//vnc_auto.html', '/\\evil.example', '//evil.example?token=x']) {
      const a = await send(port, 'GET', path);
      assert.equal(a.status, 400, path);
      assert.equal(a.headers['location'], undefined, path);
      assert.equal(a.body, 'Bad Request\n');
      assertCommonHeaders(a);
    }
  });

  test('directories get 404, never a listing', async () => {
    for (const path of ['/static/', '/static/sub/', '/static/sub', '/novnc/', '/novnc/core/', '/novnc/core', '/novnc/vendor/pako/', '/static//console.js']) {
      const a = await send(port, 'GET', path);
      assert.equal(a.status, 404, path);
      assert.equal(a.body, 'Not Found\n', path);
      assert.equal(a.headers['cache-control'], 'no-store');
    }
  });

  test('answers never echo the path or the query', async () => {
    for (const path of ['/static/nope-ECHOME.js?token=ECHOTOKEN', '/static/<script>ECHOME.js?token=ECHOTOKEN', '//ECHOME?token=ECHOTOKEN', '/novnc/core/ECHOME.js?token=ECHOTOKEN']) {
      for (const method of ['GET', 'POST']) {
        const a = await send(port, method, path);
        assert.ok(!a.body.includes('ECHO'), `${method} ${path}: ${a.body}`);
        assert.ok(!JSON.stringify(a.headers).includes('ECHO'), `${method} ${path}`);
      }
    }
  });

  test('paths outside its routes are left to the caller', async () => {
    for (const path of ['/', '/api/console/info', '/websockify?token=x', '/favicon.ico', '/staticx/console.js', '/static', '/novnc', '/vnc_auto.html/', '/VNC_AUTO.HTML', '/%73tatic/console.js']) {
      const a = await send(port, 'GET', path);
      assert.equal(a.status, 418, path);
    }
    assert.equal((await send(port, 'POST', '/api/console/info')).status, 418);
  });
});

describe('static handler startup', () => {
  test('fails clearly on a missing directory or a directory without noVNC', () => {
    const root = tempDir('ecs-console-static-bad-');
    try {
      mkdirSync(join(root, 'web'));
      writeFileSync(join(root, 'web', 'vnc_auto.html'), 'x');
      mkdirSync(join(root, 'novnc', 'core'), { recursive: true });
      mkdirSync(join(root, 'novnc', 'vendor'), { recursive: true });
      assert.throws(() => createStaticHandler({ webDir: join(root, 'nope'), novncDir: join(root, 'novnc') }), /does not exist/);
      assert.throws(() => createStaticHandler({ webDir: join(root, 'web'), novncDir: join(root, 'novnc') }), /no core\/rfb\.js/);
      writeFileSync(join(root, 'novnc', 'core', 'rfb.js'), 'x');
      rmSync(join(root, 'web', 'vnc_auto.html'));
      assert.throws(() => createStaticHandler({ webDir: join(root, 'web'), novncDir: join(root, 'novnc') }), /vnc_auto\.html/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('finds the repository web/ and the installed @novnc/novnc', () => {
    const web = findWebDir();
    const novnc = findNovncDir();
    assert.ok(existsSync(join(web, 'vnc_auto.html')), web);
    assert.ok(existsSync(join(novnc, 'core', 'rfb.js')), novnc);
    assert.equal((JSON.parse(readFileSync(join(novnc, 'package.json'), 'utf8')) as { name: string }).name, '@novnc/novnc');
  });
});

describe('static handler on the real files', () => {
  let server: Server;
  let port: number;

  before(async () => {
    ({ server, port } = await mount(createStaticHandler()));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('serves the page, its assets and every noVNC module the page imports', async () => {
    const page = await send(port, 'GET', '/vnc_auto.html?token=x&lang=EN');
    assert.equal(page.status, 200);
    assert.equal(page.body, readFileSync(join(findWebDir(), 'vnc_auto.html'), 'utf8'));
    for (const path of ['/static/console.js', '/static/console.css', '/static/i18n.js', '/static/reasons.js', '/novnc/core/rfb.js', '/novnc/core/input/keysym.js', '/novnc/core/input/keysymdef.js', '/novnc/vendor/pako/lib/zlib/inflate.js']) {
      assert.equal((await send(port, 'GET', path)).status, 200, path);
    }
  });
});
