/** `ecs-console recording policy set|list|remove` and `recording list` through the real CLI. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, seedWithCli, type CliSeed } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/stack.js';
import { parseSize } from '../../../src/cli/recording-command.js';

const env = { ECS_CONSOLE_DATA_DIR: tempDir() };
let seeded: CliSeed;
before(async () => {
  seeded = await seedWithCli(env, 5999);
});

test('sizes: units and refusals', () => {
  assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
  assert.equal(parseSize('500 MB'), 500e6);
  assert.equal(parseSize('1048576'), 1048576);
  assert.throws(() => parseSize('lots'), /not a size/);
});

test('policy set, list, remove; bad input refused with a clear message', async () => {
  const set = await runCli(['recording', 'policy', 'set', '--project', seeded.projectId, '--on', '--retention-days', '7', '--quota', '1GiB', '--json'], env);
  assert.equal(set.code, 0, set.stderr);
  const row = (JSON.parse(set.stdout) as Array<Record<string, unknown>>)[0]!;
  assert.deepEqual([row['scope'], row['recording'], row['keystrokes'], row['retentionDays'], row['quotaBytes']], ['project', 'on', 'off', 7, 1024 ** 3]);
  assert.match(String(row['by']), /^cli:/);
  const server = await runCli(['recording', 'policy', 'set', '--server', seeded.serverId, '--on', '--keystrokes', '--json'], env);
  assert.equal(server.code, 0, server.stderr);
  const list = JSON.parse((await runCli(['recording', 'policy', 'list', '--project', seeded.projectId, '--json'], env)).stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(list.map((p) => [p['scope'], p['keystrokes']]), [['project', 'off'], ['server', 'on']]);
  for (const [args, msg] of [
    [['--project', seeded.projectId], /--on or --off/],
    [['--on'], /--project or --server/],
    [['--server', 'nope', '--on'], /not found/],
    [['--server', seeded.serverId, '--on', '--quota', '1GiB'], /quota is set on a project/],
    [['--project', seeded.projectId, '--on', '--retention-days', '0'], /1 to 3650 days/],
  ] as const) {
    const r = await runCli(['recording', 'policy', 'set', ...args], env);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, msg, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.equal((await runCli(['recording', 'policy', 'remove', '--server', seeded.serverId], env)).code, 0);
  assert.notEqual((await runCli(['recording', 'policy', 'remove', '--server', seeded.serverId], env)).code, 0);
  const none = await runCli(['recording', 'list', '--project', seeded.projectId, '--json'], env);
  assert.equal(none.code, 0, none.stderr);
  assert.deepEqual(JSON.parse(none.stdout), []);
});
