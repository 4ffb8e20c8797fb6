/**
 * Locking out signature failures per (AK, source address): the same answers for unknown and known
 * AKs, every lock logged and audited, `ecs-console key unlock`, the address as the API sees it
 * (trustProxy), and a failure table that a flood of random AKs cannot grow without bound. Several
 * source addresses on loopback (127.0.0.x).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ManualClock } from '../../../src/clock.js';
import { runCli } from '../../helpers/cli.js';
import { signedHttp, type Reply } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';

async function stackFor(t: TestContext, o: { clock?: ManualClock; options?: Record<string, unknown> } = {}): Promise<{ stack: Stack; s: Seed }> {
  const stack = await startStack({ ...(o.clock ? { clock: o.clock } : {}), ...(o.options ? { options: o.options } : {}) });
  t.after(() => stack.stop());
  return { stack, s: await seed(stack.app) };
}

function call(stack: Stack, s: Seed, ak: string, sk: string, from: string, o: { at?: number; headers?: Record<string, string> } = {}): Promise<Reply> {
  return signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`, BODY, {
    ak, sk, projectId: s.projectId, localAddress: from, ...(o.at !== undefined ? { at: o.at } : {}), ...(o.headers ? { extraHeaders: o.headers } : {}),
  });
}

/** An answer with what may differ between two requests taken out: its request id and date. */
function comparable(r: Reply): { status: number; headers: Record<string, unknown>; body: string } {
  const id = String(r.headers['x-request-id']);
  assert.match(id, /^[0-9a-f]{32}$/);
  const headers: Record<string, unknown> = { ...r.headers };
  delete headers['x-request-id'];
  delete headers['date'];
  return { status: r.status, headers, body: r.text.split(id).join('<request id>') };
}

const randomAk = (): string => randomBytes(10).toString('hex').toUpperCase();

test('unknown and known AKs get the same answers, byte for byte except request ids, before and after the lock', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
  const { stack, s } = await stackFor(t, { clock });
  const unknown = randomAk();
  const answers = async (ak: string, from: string): Promise<Array<ReturnType<typeof comparable>>> => {
    const out = [];
    // Five failures lock the pair; the two after get the locked answer.
    for (let i = 0; i < 7; i++) out.push(comparable(await call(stack, s, ak, 'not-the-secret-key', from, { at: clock.now() })));
    return out;
  };
  const known = await answers(s.ak, '127.0.0.3');
  const other = await answers(unknown, '127.0.0.4');
  assert.deepEqual(other, known);
  assert.equal(known[0]!.status, 401);
  assert.match(known[4]!.body, /now locked for requests from this address for 300 s/);
  assert.match(known[6]!.body, /the access key is locked for requests from this address for 300 s/);
  // The key's owner elsewhere is not affected.
  assert.equal((await call(stack, s, s.ak, s.sk, '127.0.0.1', { at: clock.now() })).status, 200);
});

test('every lock is logged at warn (AK, address, until) and audited with the request that set it', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
  const { stack, s } = await stackFor(t, { clock });
  const unknown = randomAk();
  const lastOfFive = async (ak: string, from: string): Promise<Reply> => {
    let r: Reply | undefined;
    for (let i = 0; i < 5; i++) r = await call(stack, s, ak, 'wrong', from, { at: clock.now() });
    return r!;
  };
  const until = new Date(clock.now() + 300_000).toISOString();
  for (const [ak, from, knownKey] of [[s.ak, '127.0.0.5', true], [unknown, '127.0.0.6', false]] as const) {
    const r = await lastOfFive(ak, from);
    const lines = stack.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'access key locked for one source address after repeated signature failures' && l['ak'] === ak);
    assert.equal(lines.length, 1, `one warn line for ${ak}`);
    assert.equal(lines[0]!['level'], 'warn');
    assert.equal(lines[0]!['address'], from);
    assert.equal(lines[0]!['until'], until);
    const audit = await stack.app.services.stores.audit.listAudit({ kind: 'ak-locked', target: `ak:${ak}` });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.clientAddress, from);
    assert.equal(audit[0]!.requestId, r.headers['x-request-id']);
    assert.equal(audit[0]!.projectId, knownKey ? s.projectId : null);
    assert.deepEqual(audit[0]!.detail, { until, failures: 5, knownKey });
    assert.equal(audit[0]!.actorCredential, null);
  }
});

test('ecs-console key unlock <AK> [--address A] lifts locks at once, says what it did, and is audited with the operator', async (t) => {
  const { stack, s } = await stackFor(t);
  const lock = async (from: string): Promise<void> => {
    for (let i = 0; i < 5; i++) await call(stack, s, s.ak, 'wrong', from);
    assert.equal((await call(stack, s, s.ak, s.sk, from)).status, 401, `${from} is locked`);
  };
  const cli = (...args: string[]) => runCli(['key', 'unlock', ...args, '--data-dir', stack.dataDir]);

  await lock('127.0.0.7');
  const one = await cli(s.ak, '--address', '127.0.0.7');
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, `unlocked ${s.ak} for 127.0.0.7\n`);
  assert.equal((await call(stack, s, s.ak, s.sk, '127.0.0.7')).status, 200);
  const [audit] = await stack.app.services.stores.audit.listAudit({ kind: 'ak-unlocked', target: `ak:${s.ak}` });
  assert.match(String(audit?.actorCredential), /^cli:./);
  assert.deepEqual(audit?.detail, { address: '127.0.0.7', locksLifted: '127.0.0.7', recordsCleared: 1 });

  await lock('127.0.0.7');
  await lock('127.0.0.8');
  const all = await cli(s.ak, '--json');
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(JSON.parse(all.stdout), { ak: s.ak, address: '*', unlocked: ['127.0.0.7', '127.0.0.8'], cleared: 2 });
  for (const from of ['127.0.0.7', '127.0.0.8']) assert.equal((await call(stack, s, s.ak, s.sk, from)).status, 200);

  const none = await cli(s.ak);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, `${s.ak} was not locked\n`);
  const unknown = await cli(randomAk());
  assert.equal(unknown.code, 3);
  assert.match(unknown.stderr, /^error: access key "[0-9A-F]{20}" not found\n$/);
  const bad = await cli(s.ak, '--address', 'not-an-address');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /address must be an IPv4 or IPv6 address/);
});

test('the address counted is the one the API sees: X-Forwarded-For only behind a trusted proxy', async (t) => {
  // Not trusted (the default): a forged X-Forwarded-For changes nothing, the socket's address is locked.
  const plain = await stackFor(t);
  for (let i = 0; i < 5; i++) await call(plain.stack, plain.s, plain.s.ak, 'wrong', '127.0.0.9', { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
  assert.equal((await call(plain.stack, plain.s, plain.s.ak, plain.s.sk, '127.0.0.9', { headers: { 'x-forwarded-for': '198.51.100.99' } })).status, 401);

  // Trusted: the client address the proxy forwarded is the one locked.
  const behind = await stackFor(t, { options: { trustProxy: 'true' } });
  const via = (sk: string, client: string): Promise<Reply> => call(behind.stack, behind.s, behind.s.ak, sk, '127.0.0.1', { headers: { 'x-forwarded-for': client } });
  for (let i = 0; i < 5; i++) await via('wrong', '203.0.113.7');
  assert.equal((await via(behind.s.sk, '203.0.113.7')).status, 401);
  assert.equal((await via(behind.s.sk, '203.0.113.8')).status, 200);
  const [audit] = await behind.stack.app.services.stores.audit.listAudit({ kind: 'ak-locked' });
  assert.equal(audit?.clientAddress, '203.0.113.7');
});

test('a flood of random AKs keeps the failure records bounded (akFailureMaxRecords); expired records are purged', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12, 0, 0));
  const { stack, s } = await stackFor(t, { clock, options: { akFailureMaxRecords: '100' } });
  const rows = (): number => {
    const db = new Database(join(stack.dataDir, 'ecs-console.db'), { readonly: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM signature_failures').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  let most = 0;
  for (let i = 0; i < 400; i++) {
    const r = await call(stack, s, randomAk(), 'wrong', '127.0.0.10', { at: clock.now() });
    assert.equal(r.status, 401);
    if (i % 50 === 49) most = Math.max(most, rows());
  }
  // At most maxRecords, plus what one node adds between two trims (a tenth).
  assert.ok(most > 0 && most <= 110, `records: ${most}`);
  assert.ok(stack.logs.lines.some((l) => l.includes('signature-failure records over the limit')));
  clock.advance(300_000);
  assert.ok((await stack.app.services.identity.purgeSignatureFailures()) > 0);
  assert.equal(rows(), 0);
});
