/**
 * Password logins under abuse (POST /v3/auth/tokens): a flood from one address is cut off after its
 * failure budget and answered 429 without hashing, a user name under attack is refused only for
 * new addresses and only while the attack lasts, and the password-hashing gate refuses what it
 * cannot start soon. Several source addresses on loopback; counts, never timings.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/clock.js';
import { http, type Reply } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

async function stackFor(t: TestContext, o: { clock?: ManualClock; options?: Record<string, unknown> } = {}): Promise<{ stack: Stack; s: Seed }> {
  const stack = await startStack({ ...(o.clock ? { clock: o.clock } : {}), ...(o.options ? { options: o.options } : {}) });
  t.after(() => stack.stop());
  return { stack, s: await seed(stack.app) };
}

function login(stack: Stack, s: Seed, user: string, password: string, from: string): Promise<Reply> {
  const body = JSON.stringify({
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: s.domain } } } },
      scope: { project: { id: s.projectId } },
    },
  });
  return http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, body, { localAddress: from });
}

/** A 429 in Keystone's shape, as Huawei IAM answers, with Retry-After. */
function assertThrottled(r: Reply, message: RegExp): void {
  assert.equal(r.status, 429, r.text);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.equal(r.json.error.code, 429);
  assert.equal(r.json.error.title, 'Too Many Requests');
  assert.match(r.json.error.message, message);
  assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After: ${String(r.headers['retry-after'])}`);
  assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{32}$/);
  assert.equal(r.headers['x-subject-token'], undefined);
}

test('400 bad logins from one address, 100 in flight: only its failure budget is checked, the rest is 429; a good login from another address succeeds meanwhile', async (t) => {
  const { stack, s } = await stackFor(t);
  let sent = 0;
  const answers: Reply[] = [];
  const worker = async (): Promise<void> => {
    // A spray over many names, as a password-guessing client would.
    while (sent < 400) answers.push(await login(stack, s, `mallory-${sent++}`, 'wrong-password', '127.0.0.1'));
  };
  const flood = Promise.all(Array.from({ length: 100 }, worker));
  const good = login(stack, s, s.user, s.password, '127.0.0.2');
  const [, mine] = await Promise.all([flood, good]);
  assert.equal(mine.status, 201, mine.text);

  assert.equal(answers.length, 400);
  const checked = answers.filter((r) => r.status === 401);
  const throttled = answers.filter((r) => r.status === 429);
  assert.equal(checked.length + throttled.length, 400, `statuses: ${[...new Set(answers.map((r) => r.status))].join(',')}`);
  for (const r of checked) assert.equal(r.json.error.message, 'The username or password is wrong.');
  for (const r of throttled) assertThrottled(r, /^Too many (failed logins from this address|logins in progress from this address)/);
  // At most 2 checks in flight for the address (iamLoginPendingPerAddress), so most of the flood
  // was refused before the failures added up; going on, one at a time, the budget runs out.
  let more = 0;
  for (;;) {
    const r = await login(stack, s, `mallory-${sent++}`, 'wrong-password', '127.0.0.1');
    if (r.status === 429) {
      assertThrottled(r, /^Too many failed logins from this address: retry in \d+ s\.$/);
      break;
    }
    assert.equal(r.status, 401);
    assert.ok(++more + checked.length <= 21, 'more than 21 passwords checked from one address');
  }
  // 20 failures per minute (iamLoginFailuresPerAddress), plus at most one already admitted when the
  // 20th was counted: never more passwords checked than that.
  const total = checked.length + more;
  assert.ok(total >= 20 && total <= 21, `${total} passwords checked`);
  // Once the budget is spent, the address is refused outright, whatever the name.
  assertThrottled(await login(stack, s, s.user, s.password, '127.0.0.1'), /^Too many failed logins from this address: retry in \d+ s\.$/);
});

test('a user name under attack: refused for the rest of the minute from new addresses only; addresses it logged in from, other users and unknown names alike', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
  const { stack, s } = await stackFor(t, { clock });
  await stack.app.services.identity.createUser({ domain: s.domain, name: 'bob', password: 'Bobs-passw0rd' });
  assert.equal((await login(stack, s, s.user, s.password, '127.0.0.3')).status, 201);
  // Ten failures (iamLoginFailuresPerUser) from several addresses.
  for (let i = 0; i < 10; i++) assert.equal((await login(stack, s, s.user, 'wrong-password', `127.0.1.${i}`)).status, 401);

  const fromNew = await login(stack, s, s.user, s.password, '127.0.0.4');
  assertThrottled(fromNew, /^Too many failed logins for this user: retry in 60 s\.$/);
  assert.equal((await login(stack, s, s.user, s.password, '127.0.0.3')).status, 201, 'the address it logged in from before');
  assert.equal((await login(stack, s, 'bob', 'Bobs-passw0rd', '127.0.0.4')).status, 201, 'another user');

  // An unknown name is counted and answered the same way (no existence oracle).
  for (let i = 0; i < 10; i++) assert.equal((await login(stack, s, 'nobody', 'wrong-password', `127.0.2.${i}`)).status, 401);
  const unknown = await login(stack, s, 'nobody', 'whatever-password', '127.0.0.4');
  assert.equal(unknown.text, fromNew.text);

  clock.advance(60_000);
  assert.equal((await login(stack, s, s.user, s.password, '127.0.0.4')).status, 201, 'the minute is over');
});

test('the password-hashing gate: a login that can neither run nor wait, or whose address holds its share, is 429 at once', async (t) => {
  const { stack, s } = await stackFor(t, { options: { iamLoginConcurrency: '1', iamLoginQueue: '1', iamLoginPendingPerAddress: '1' } });
  const gate = stack.app.services.logins.gate;
  // Two logins in progress elsewhere: one hashing, one waiting.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const held = [gate.run('127.0.0.5', () => released), gate.run('127.0.0.6', () => released)];
  assert.deepEqual(gate.load, { running: 1, queued: 1 });
  assertThrottled(await login(stack, s, s.user, s.password, '127.0.0.7'), /^Too many logins in progress: retry in 1 s\.$/);
  // The address that holds its one place may not queue another.
  assertThrottled(await login(stack, s, s.user, s.password, '127.0.0.5'), /^Too many logins in progress from this address: retry in 1 s\.$/);
  release();
  await Promise.all(held);
  assert.deepEqual(gate.load, { running: 0, queued: 0 });
  assert.equal((await login(stack, s, s.user, s.password, '127.0.0.7')).status, 201);

  // Where the user just logged in, it has a place of its own in the queue: a full line of
  // strangers does not refuse it.
  let release2!: () => void;
  const released2 = new Promise<void>((r) => (release2 = r));
  const busy = [gate.run('127.0.0.5', () => released2), gate.run('127.0.0.6', () => released2)];
  assertThrottled(await login(stack, s, s.user, s.password, '127.0.0.8'), /^Too many logins in progress: retry in 1 s\.$/);
  const known = login(stack, s, s.user, s.password, '127.0.0.7');
  // It waits in its own line (the ordinary one holds its one place already).
  for (let i = 0; gate.load.queued < 2; i++) {
    assert.ok(i < 500, `the known address's login never queued: ${JSON.stringify(gate.load)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  release2();
  await Promise.all(busy);
  assert.equal((await known).status, 201);
});
