/**
 * Logs people can read: level names in JSON, a pretty one-line format, and the lines an operator
 * looks for first at warn (refusals with the refused Origin, unreachable backends with their
 * address, refused API credentials), page loads and pre-checks at info, never with the token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { DemoVncServer } from '../../../src/demo/index.js';
import { createLogger, defaultLogFormat } from '../../../src/log.js';
import { consoleFailure, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { LogCapture, seed, startStack } from '../../helpers/stack.js';

type Line = Record<string, unknown>;
const parse = (logs: LogCapture): Line[] => logs.lines.map((l) => JSON.parse(l) as Line);

test('JSON lines name their level (warn, not 40)', () => {
  const logs = new LogCapture();
  const log = createLogger({ level: 'debug', destination: logs });
  log.warn({ a: 1 }, 'w');
  log.info('i');
  log.child({ component: 'x' }).error('e');
  assert.deepEqual(parse(logs).map((l) => [l['level'], l['msg']]), [['warn', 'w'], ['info', 'i'], ['error', 'e']]);
});

test('pretty lines: time, level name, message and fields on one line, secrets redacted as in JSON', () => {
  const logs = new LogCapture();
  const log = createLogger({ level: 'info', destination: logs, format: 'pretty', colorize: false });
  log.warn({ origin: 'https://evil.example', token: 'not-for-logs', sk: 'secret-key' }, 'console refused');
  assert.equal(logs.lines.length, 1);
  assert.match(logs.lines[0]!, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: console refused \{.*"origin":"https:\/\/evil\.example".*\}$/);
  assert.doesNotMatch(logs.text, /not-for-logs|secret-key/);
  assert.match(logs.text, /"token":"\[redacted\]"/);
});

test('secret fields are redacted at the top, one level down, in child bindings and in an error, and nothing else is touched', () => {
  const logs = new LogCapture();
  const log = createLogger({ level: 'info', destination: logs });
  const user = { name: 'alice', password: 'pw-one-level-down' };
  log.info({ token: 'top-level-token', user, headers: { authorization: 'auth-value', accept: 'x' }, list: [{ sk: 'in-array' }], n: 1 }, 'fields');
  log.child({ peer: { secret: 'bound-secret', id: 'p1' } }).info('child');
  const err = Object.assign(new Error('failed'), { sk: 'error-sk' });
  log.error({ err }, 'error');
  const [fields, child, error] = parse(logs);
  assert.deepEqual(fields!['user'], { name: 'alice', password: '[redacted]' });
  assert.equal(fields!['token'], '[redacted]');
  assert.deepEqual(fields!['headers'], { authorization: '[redacted]', accept: 'x' });
  assert.equal(fields!['n'], 1);
  // The caller's object is not changed.
  assert.equal(user.password, 'pw-one-level-down');
  assert.deepEqual(child!['peer'], { secret: '[redacted]', id: 'p1' });
  const e = error!['err'] as Record<string, unknown>;
  assert.equal(e['sk'], '[redacted]');
  assert.equal(e['message'], 'failed');
  assert.match(String(e['stack']), /Error: failed/);
  assert.doesNotMatch(logs.text, /pw-one-level-down|top-level-token|auth-value|bound-secret|error-sk/);
});

test('the default format is pretty on a terminal and JSON anywhere else', () => {
  assert.equal(defaultLogFormat({ isTTY: true }), 'pretty');
  assert.equal(defaultLogFormat({ isTTY: false }), 'json');
  assert.equal(defaultLogFormat({}), 'json');
});

test('refusals, backend failures and refused credentials at warn with what explains them; page loads and pre-checks at info without the token', async () => {
  const vnc = new DemoVncServer({ name: 'logs', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  // A port nobody listens on: taken, then released.
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as { port: number }).port;
  await new Promise((r) => dead.close(r));
  const stack = await startStack({ options: { logLevel: 'info' } });
  const tokens: string[] = [];
  let goneId = '';
  try {
    const s = await seed(stack.app, { host: '127.0.0.1', port });
    const client = sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
    const issue = async (id = s.active.id): Promise<string> => {
      const u = (await remoteConsole(client, id)).remote_console.url;
      tokens.push(new URL(u).searchParams.get('token')!);
      return u;
    };
    // A page load and its pre-check, as the browser does them.
    const url = await issue();
    const page = await http('GET', url);
    assert.equal(page.status, 200);
    await http('POST', `${stack.proxyUrl}/api/console/info`, { 'content-type': 'application/json' }, JSON.stringify({ token: tokens[0] }));
    // A foreign page's origin.
    const refused = await openWs(wsUrlOf(url), { origin: 'https://evil.example' });
    assert.equal(refused.ok, false);
    // A server whose VNC server cannot be reached.
    const gone = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'gone-01', console: { host: '127.0.0.1', port: deadPort, auth: 'none', password: null } });
    goneId = gone.id;
    await consoleFailure(await issue(gone.id));
    // A wrong secret key.
    await assert.rejects(remoteConsole(sdkClient(stack.apiUrl, s.ak, 'wrong-secret-key', s.projectId), s.active.id));
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await stack.stop();
    await vnc.close();
  }
  const lines = parse(stack.logs);
  const one = (msg: string, pred: (l: Line) => boolean = () => true): Line => {
    const found = lines.find((l) => l['msg'] === msg && pred(l));
    assert.ok(found, `a "${msg}" line; got ${lines.map((l) => l['msg']).join(', ')}`);
    return found;
  };
  const origin = one('console refused', (l) => l['reason'] === 'bad-origin');
  assert.equal(origin['level'], 'warn');
  assert.equal(origin['origin'], 'https://evil.example');
  assert.equal(origin['status'], 403);
  assert.ok(origin['remote']);

  const backend = lines.find((l) => String(l['msg']).startsWith('console backend failed'));
  assert.ok(backend, 'a "console backend failed" line');
  assert.equal(backend['level'], 'warn');
  assert.equal(backend['backend'], `127.0.0.1:${deadPort}`);
  assert.equal(backend['server'], goneId);
  assert.match(String(backend['backendReason']), /ECONNREFUSED/);

  const denied = one('request refused');
  assert.equal(denied['level'], 'warn');
  assert.equal(denied['status'], 401);
  assert.equal(denied['error'], 'APIGW.0301');
  assert.match(String(denied['reason']), /signature/);

  const served = one('console page served');
  assert.equal(served['level'], 'info');
  assert.equal(served['path'], '/vnc_auto.html');
  assert.equal(served['status'], 200);

  const check = one('console pre-check');
  assert.equal(check['level'], 'info');
  assert.equal(check['state'], 'valid');
  assert.match(String(check['tokenRef']), /^[0-9a-f]{8}$/);

  for (const t of tokens) assert.ok(!stack.logs.text.includes(t), 'a console token appears in the logs');
  assert.ok(!stack.logs.text.includes('wrong-secret-key'));
});

/** Runs `body` in a child node process with the built logger; returns its stdout and stderr. */
function loggerChild(body: string): { stdout: string; stderr: string } {
  const logUrl = new URL('../../../src/log.js', import.meta.url).href;
  const script = `import fs from 'node:fs';
let writes = 0;
const write = fs.write;
fs.write = (...a) => { writes++; return write(...a); };
const { createLogger } = await import(${JSON.stringify(logUrl)});
const log = createLogger({ level: 'info' });
${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

test('stdout lines: the lines of one turn leave in one write; a process that exits right after logging writes them', () => {
  const turn = loggerChild(`for (let i = 0; i < 5; i++) log.info({ i }, 'audit connected');
setTimeout(() => process.stderr.write(String(writes)), 50);`);
  assert.equal(turn.stderr, '1');
  assert.deepEqual(turn.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Line)['i']), [0, 1, 2, 3, 4]);
  const exiting = loggerChild(`log.info({ last: true }, 'going'); log.error('gone'); process.exit(0);`);
  assert.deepEqual(exiting.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Line)['msg']), ['going', 'gone']);
});
