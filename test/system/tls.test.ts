/**
 * TLS: the API serves HTTPS and the proxy HTTPS/WSS from a certificate made at test time (by
 * Debian's openssl), TLS 1.2 at least, with Strict-Transport-Security. Fails when openssl is missing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { DemoVncServer } from '../../src/demo/index.js';
import { openConsole } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { requireBinary } from '../helpers/real-vnc.js';
import { seed, startStack, tempDir, type Seed, type Stack } from '../helpers/stack.js';

let stack: Stack;
let s: Seed;
let vnc: DemoVncServer;
let apiPort = 0;
let proxyPort = 0;
let caCert: Buffer;

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
  const openssl = requireBinary('/usr/bin/openssl', 'openssl');
  const dir = tempDir('ecs-tls-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
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

test('plain HTTP to the TLS ports is not served', async () => {
  const { http } = await import('../helpers/signed-fetch.js');
  for (const port of [apiPort, proxyPort]) {
    await assert.rejects(http('GET', `http://127.0.0.1:${port}/healthz`).then((r) => { if (r.status === 200) throw new Error('served'); throw new Error('refused'); }));
  }
});
