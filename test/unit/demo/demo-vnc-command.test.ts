/** `ecs-console demo-vnc` runs the demo server alone, with or without a password. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SecurityType } from '../../../src/rfb/index.js';
import { MAIN, runCli } from '../../helpers/cli.js';
import { RfbTestClient } from '../../helpers/rfb-test-client.js';

async function run(args: string[]): Promise<{ port: number; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [MAIN, 'demo-vnc', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /on 127\.0\.0\.1:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => reject(new Error(`exited: ${err}`)));
  });
  return { port, stop: () => new Promise((r) => { child.on('exit', (c) => r(c)); child.kill('SIGTERM'); }) };
}

test('demo-vnc with a password asks for VNC authentication and shows its name', async () => {
  const d = await run(['--listen', '127.0.0.1:0', '--password', 'pw123', '--name', 'vm-7']);
  const c = await RfbTestClient.connectTcp(d.port, '127.0.0.1', { password: 'pw123' });
  assert.deepEqual(c.offeredSecurityTypes, [SecurityType.VncAuthentication]);
  assert.equal(c.name, 'vm-7');
  c.close();
  assert.equal(await d.stop(), 0);
});

test('demo-vnc without a password offers None', async () => {
  const d = await run(['--listen', '127.0.0.1:0']);
  const c = await RfbTestClient.connectTcp(d.port);
  assert.deepEqual(c.offeredSecurityTypes, [SecurityType.None]);
  c.close();
  await d.stop();
});

test('demo-vnc refuses a bad listen address with a clear message', async () => {
  const r = await runCli(['demo-vnc', '--listen', 'nonsense']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /listen address must be host:port/);
});
