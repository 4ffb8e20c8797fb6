/** `ecs-console … | head`: a reader that goes away ends a command quietly, never with a stack trace. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { MAIN, runCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/stack.js';

/** Runs the binary with its standard output a pipe whose reading end is closed before it writes. */
function runWithClosedStdout(args: string[], env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test('EPIPE on standard output: every kind of command ends quietly with its own status', async () => {
  const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_LOG_LEVEL: 'warn' };
  const init = await runCli(['init'], env);
  assert.equal(init.code, 0, init.stderr);
  const p = await runCli(['project', 'create', '--name', 'p1', '--domain', 'd', '--json'], env);
  assert.equal(p.code, 0, p.stderr);
  for (const args of [['config-doc'], ['--help'], ['sessions', 'list'], ['sessions', 'list', '--json'], ['project', 'list', '--json']]) {
    const r = await runWithClosedStdout(args, env);
    assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
    assert.deepEqual([r.code, r.signal], [0, null], args.join(' '));
  }
  // A command that fails still says why, and its status stays.
  const bad = await runWithClosedStdout(['sessions', 'kill', '00000000-0000-4000-8000-000000000000'], env);
  assert.match(bad.stderr, /^error: .*not found/);
  assert.doesNotMatch(bad.stderr, /EPIPE|at /);
  assert.equal(bad.code, 3);
});
