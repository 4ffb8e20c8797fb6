/**
 * TLS: the API serves HTTPS and the proxy HTTPS/WSS from a certificate made at test time (by
 * Debian's openssl), TLS 1.2 at least with forward-secret AEAD suites only (checked with
 * `openssl s_client`), Strict-Transport-Security, a 400 with a hint for plain HTTP, https URLs in
 * what `serve` prints, and certificates reloaded on SIGHUP. Fails when openssl is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { DemoVncServer } from '../../src/demo/index.js';
import { startCli, type RunningServer } from '../helpers/cli.js';
import { openConsole } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { makeCert as makeCertWith, servedFingerprint } from '../helpers/certs.js';
import { requireBinary } from '../helpers/real-vnc.js';
import { seed, startStack, tempDir, type Seed, type Stack } from '../helpers/stack.js';

let stack: Stack;
let s: Seed;
let vnc: DemoVncServer;
let apiPort = 0;
let proxyPort = 0;
let caCert: Buffer;
let openssl = '';
let certDir = '';

function makeCert(dir: string, name: string): { cert: string; key: string } {
  return makeCertWith(dir, name, openssl);
}

const fingerprintOf = (certFile: string): string => new X509Certificate(readFileSync(certFile)).fingerprint256;

/**
 * `openssl s_client` limited to one protocol version and cipher: the cipher agreed, or null when
 * the handshake failed. Asynchronous: the servers under test run in this process.
 */
function sClient(port: number, version: '-tls1_2' | '-tls1_3', cipher: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(openssl, ['s_client', '-connect', `127.0.0.1:${port}`, version, version === '-tls1_3' ? '-ciphersuites' : '-cipher', cipher], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve(code === 0 ? /Cipher is (\S+)/.exec(out)?.[1] ?? null : null));
    child.stdin.end();
  });
}

/** Sends a plain HTTP request to a TLS port; resolves with everything the server answered. */
function plainHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1', () => sock.write(request));
    let answer = '';
    sock.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    sock.on('end', () => resolve(answer));
    sock.on('error', reject);
  });
}

function get(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function handshake(port: number, max: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: max, servername: 'localhost' });
    sock.once('secureConnect', () => {
      const v = sock.getProtocol() ?? '';
      sock.end();
      resolve(v);
    });
    sock.once('error', reject);
  });
}

before(async () => {
  openssl = requireBinary('/usr/bin/openssl', 'openssl');
  certDir = tempDir('ecs-tls-');
  const { cert, key } = makeCert(certDir, 'stack');
  caCert = readFileSync(cert);
  vnc = new DemoVncServer({ name: 'tls', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  stack = await startStack({ options: { apiTlsCert: cert, apiTlsKey: key, proxyTlsCert: cert, proxyTlsKey: key } });
  s = await seed(stack.app, { host: '127.0.0.1', port });
  apiPort = Number(new URL(stack.apiUrl).port);
  proxyPort = Number(new URL(stack.proxyUrl).port);
});
after(async () => {
  await stack?.stop();
  await vnc?.close();
});

test('the official SDK gets an https console URL over HTTPS; the console opens over WSS', async () => {
  const resp = await remoteConsole(sdkClient(`https://127.0.0.1:${apiPort}`, s.ak, s.sk, s.projectId, caCert), s.active.id);
  assert.match(resp.remote_console.url, new RegExp(`^https://127\\.0\\.0\\.1:${proxyPort}/vnc_auto\\.html\\?token=`));
  const c = await openConsole(resp.remote_console.url);
  await c.client.waitUntil(() => c.client.updateCount > 0);
  c.ws.close();
});

test('Strict-Transport-Security on the API and the proxy', async () => {
  for (const [port, path] of [[apiPort, '/healthz'], [proxyPort, '/vnc_auto.html'], [proxyPort, '/healthz']] as const) {
    const r = await get(port, path);
    assert.equal(r.status, 200, `${port}${path}`);
    assert.match(String(r.headers['strict-transport-security']), /max-age=\d+/);
  }
});

test('TLS 1.2 and 1.3 are accepted; a client limited to TLS 1.1 is refused', async () => {
  for (const port of [apiPort, proxyPort]) {
    assert.equal(await handshake(port, 'TLSv1.2'), 'TLSv1.2');
    assert.equal(await handshake(port, 'TLSv1.3'), 'TLSv1.3');
    await assert.rejects(handshake(port, 'TLSv1.1'));
  }
});

test('TLS 1.2 offers forward-secret AEAD suites only: no static RSA, no CBC, no SHA-1 MAC, no DHE (openssl s_client)', async () => {
  for (const port of [apiPort, proxyPort]) {
    for (const refused of ['AES128-SHA', 'AES256-SHA', 'AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384', 'DHE-RSA-AES128-GCM-SHA256']) {
      assert.equal(await sClient(port, '-tls1_2', refused), null, `${refused} on ${port}`);
    }
    for (const accepted of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
      assert.equal(await sClient(port, '-tls1_2', accepted), accepted, `${accepted} on ${port}`);
    }
    for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
      assert.equal(await sClient(port, '-tls1_3', suite), suite, `${suite} on ${port}`);
    }
  }
});

test('plain HTTP to a TLS port gets 400 with a hint, as nginx answers (API in the Huawei shape)', async () => {
  const api = await plainHttp(apiPort, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.match(api, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(api, /Connection: close\r\n/);
  const body = JSON.parse(api.slice(api.indexOf('\r\n\r\n') + 4)) as { error_code: string; error_msg: string };
  assert.equal(body.error_code, 'APIGW.0101');
  assert.match(body.error_msg, /^The plain HTTP request was sent to HTTPS port/);
  const proxy = await plainHttp(proxyPort, 'GET /vnc_auto.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.match(proxy, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(proxy, /\r\n\r\nThe plain HTTP request was sent to HTTPS port: use https:\/\//);
  const head = await plainHttp(proxyPort, 'HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.ok(head.endsWith('\r\n\r\n'), 'no body for HEAD');
  // TLS clients on the same ports are unaffected.
  assert.equal((await get(apiPort, '/healthz')).status, 200);
  assert.equal((await get(proxyPort, '/healthz')).status, 200);
});

describe('serve with TLS, as a process', () => {
  let server: RunningServer;
  let files: { cert: string; key: string };
  let first: { cert: string; key: string };
  let dataDir = '';

  before(async () => {
    first = makeCert(certDir, 'first');
    files = { cert: join(certDir, 'live-cert.pem'), key: join(certDir, 'live-key.pem') };
    copyFileSync(first.cert, files.cert);
    copyFileSync(first.key, files.key);
    dataDir = tempDir('ecs-tls-serve-');
    server = await startCli(['serve', '--demo', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], {
      ECS_CONSOLE_DATA_DIR: dataDir, ECS_CONSOLE_LOG_LEVEL: 'info',
      ECS_CONSOLE_API_TLS_CERT: files.cert, ECS_CONSOLE_API_TLS_KEY: files.key,
      ECS_CONSOLE_PROXY_TLS_CERT: files.cert, ECS_CONSOLE_PROXY_TLS_KEY: files.key,
    });
    for (let i = 0; i < 200 && !server.stdout().includes('ecs-console demo is running'); i++) await new Promise((r) => setTimeout(r, 25));
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    await server?.exited;
  });

  const logLines = (): Array<Record<string, unknown>> => server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const until = async (what: string, predicate: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(predicate(), what);
  };

  test('every printed URL says https: the addresses, the demo banner and demo.json', () => {
    assert.match(server.stderr(), /API on https:\/\/127\.0\.0\.1:\d+\n/);
    assert.match(server.stderr(), /console proxy on https:\/\/127\.0\.0\.1:\d+\n/);
    assert.match(server.apiUrl, /^https:/);
    const banner = server.stdout();
    assert.match(banner, /^ {2}API {13}https:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(banner, /^ {2}Console proxy {3}https:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(banner, /^ {4}https:\/\/127\.0\.0\.1:\d+\/vnc_auto\.html\?token=/m);
    assert.doesNotMatch(banner, /http:\/\//);
    const demo = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8')) as { apiUrl: string; consoleBaseUrl: string };
    assert.equal(demo.apiUrl, server.apiUrl);
    assert.match(demo.consoleBaseUrl, /^https:/);
    const listening = logLines().filter((l) => l['msg'] === 'API listening' || l['msg'] === 'console proxy listening').map((l) => String(l['url']));
    assert.equal(listening.length, 2);
    for (const u of listening) assert.match(u, /^https:\/\//);
  });

  test('SIGHUP: new connections see the new certificate on both listeners, a live session goes on; a bad certificate keeps the previous one', async () => {
    const apiTls = Number(new URL(server.apiUrl).port);
    const proxyTls = Number(new URL(server.proxyUrl).port);
    for (const port of [apiTls, proxyTls]) assert.equal(await servedFingerprint(port), fingerprintOf(first.cert));
    const url = /^ {4}(https:\/\/\S+\/vnc_auto\.html\?token=\S+)$/m.exec(server.stdout())![1]!;
    const c = await openConsole(url);
    await c.client.waitUntil(() => c.client.updateCount > 0);

    const second = makeCert(certDir, 'second');
    copyFileSync(second.key, files.key);
    copyFileSync(second.cert, files.cert);
    server.child.kill('SIGHUP');
    await until('reloaded', () => logLines().some((l) => l['msg'] === 'configuration reloaded' && JSON.stringify(l['tls']) === '{"api":"reloaded","proxy":"reloaded"}'));
    assert.notEqual(fingerprintOf(second.cert), fingerprintOf(first.cert));
    for (const port of [apiTls, proxyTls]) assert.equal(await servedFingerprint(port), fingerprintOf(second.cert), `new certificate on ${port}`);
    let update = c.client.waitForUpdate();
    c.client.requestUpdate(false);
    await update;

    writeFileSync(files.cert, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    server.child.kill('SIGHUP');
    await until('kept', () => logLines().some((l) => l['msg'] === 'configuration reloaded' && JSON.stringify(l['tls']) === '{"api":"kept-previous","proxy":"kept-previous"}'));
    const errors = logLines().filter((l) => l['msg'] === 'TLS certificate reload failed; new connections keep the previous certificate');
    assert.deepEqual(errors.map((l) => [l['level'], l['listener'], l['cert']]), [['error', 'api', files.cert], ['error', 'proxy', files.cert]]);
    for (const port of [apiTls, proxyTls]) assert.equal(await servedFingerprint(port), fingerprintOf(second.cert), `previous certificate kept on ${port}`);
    update = c.client.waitForUpdate();
    c.client.requestUpdate(false);
    await update;
    assert.equal(server.child.exitCode, null);
    c.ws.close();
  });
});
