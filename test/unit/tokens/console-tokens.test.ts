/** Console tokens at rest and over time: hashes only, TTL, revocation, restart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../../../src/clock.js';
import { consoleTokenHash, presentedToken } from '../../../src/tokens/console-token-service.js';
import { tokenRef } from '../../../src/log.js';
import { signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, tempDir } from '../../helpers/stack.js';

const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';
const tokenOf = (url: string): string => new URL(url).searchParams.get('token')!;

/** Every byte the data directory holds (database, WAL), as latin1 text for searching. */
function rawData(dir: string): string {
  return readdirSync(dir).filter((f) => f.startsWith('ecs-console.db')).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('\n');
}

test('the database holds token hashes, no clear token, SK or VNC password; a restart keeps issued tokens', async () => {
  const dataDir = tempDir();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let stack = await startStack({ dataDir, clock });
  const s = await seed(stack.app, { host: '127.0.0.1', port: 5900, auth: 'vnc-password', password: 'vncS3cr' });
  const r = await signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId, at: clock.now() });
  assert.equal(r.status, 200, r.text);
  const token = tokenOf(r.json.remote_console.url);
  const raw = rawData(dataDir);
  assert.ok(raw.includes(consoleTokenHash(token)), 'hash stored');
  for (const secret of [token, s.sk, s.otherSk, 'vncS3cr', s.password]) assert.ok(!raw.includes(secret), `found a secret in the raw database`);
  await stack.stop();

  stack = await startStack({ dataDir, clock });
  const peek = await stack.app.services.consoleTokens.peek(token);
  assert.equal(peek.state, 'valid');
  const consumed = await stack.app.services.consoleTokens.consume(token, 'node-a');
  assert.equal(consumed.ok, true);
  assert.deepEqual(await stack.app.services.consoleTokens.consume(token, 'node-b'), { ok: false, reason: 'used' });
  await stack.stop();
});

test('TTL: valid until 600 s, then expired, then purged after the grace period', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const stack = await startStack({ clock });
  try {
    const s = await seed(stack.app);
    const svc = stack.app.services.consoleTokens;
    const a = await svc.issue(s.active);
    const b = await svc.issue(s.active);
    clock.advance(599_999);
    assert.equal((await svc.peek(a.token)).state, 'valid');
    clock.advance(1);
    assert.equal((await svc.peek(a.token)).state, 'expired');
    assert.deepEqual(await svc.consume(b.token, 'n'), { ok: false, reason: 'expired' });
    assert.equal(await svc.purge(), 0);
    clock.advance(3600_000);
    assert.equal(await svc.purge(), 2);
    assert.equal((await svc.peek(a.token)).state, 'unknown');
  } finally {
    await stack.stop();
  }
});

test('malformed tokens are unknown without a lookup', async () => {
  const stack = await startStack();
  try {
    for (const t of ['', 'x', '00000000-0000-0000-0000-000000000000', 'A'.repeat(10_000), "' OR 1=1 --"]) {
      assert.deepEqual(await stack.app.services.consoleTokens.consume(t, 'n'), { ok: false, reason: 'unknown' });
    }
  } finally {
    await stack.stop();
  }
});

test('leaving ACTIVE, a new console target and deletion each revoke the server\'s tokens', async () => {
  const stack = await startStack();
  try {
    const s = await seed(stack.app);
    const { consoleTokens: svc, inventory } = stack.app.services;
    const changes: string[] = [];
    inventory.onChange((c) => void changes.push(c.reason));

    const t1 = await svc.issue(s.active);
    await inventory.setStatus(s.active.id, 'ACTIVE');
    assert.equal((await svc.peek(t1.token)).state, 'valid', 'staying ACTIVE revokes nothing');
    await inventory.setStatus(s.active.id, 'SHUTOFF');
    // Revoked tokens are kept until they expire, with the reason: the holder hears what happened.
    const revoked = async (token: string): Promise<[string, string | null | undefined]> => {
      const p = await svc.peek(token);
      return [p.state, p.record?.revokedReason];
    };
    assert.deepEqual(await revoked(t1.token), ['revoked', 'server-stopped']);
    assert.deepEqual(await svc.consume(t1.token, 'n'), { ok: false, reason: 'revoked', revokedReason: 'server-stopped' });

    await inventory.setStatus(s.active.id, 'ACTIVE');
    assert.deepEqual(await revoked(t1.token), ['revoked', 'server-stopped'], 'starting again does not bring old links back');
    const t2 = await svc.issue(await inventory.getServer(s.active.id));
    const moved = await inventory.setConsole(s.active.id, { host: '127.0.0.2', port: 5901, auth: 'none' });
    assert.equal(moved.consoleRevision, 2);
    assert.deepEqual(await revoked(t2.token), ['revoked', 'console-changed']);

    const t3 = await svc.issue(moved);
    const other = await svc.issue(s.foreign);
    await inventory.removeServer(s.active.id);
    assert.deepEqual(await revoked(t3.token), ['revoked', 'server-deleted']);
    assert.equal((await svc.peek(other.token)).state, 'valid', 'other servers keep their tokens');
    assert.deepEqual(changes, ['server-stopped', 'console-changed', 'server-deleted']);
  } finally {
    await stack.stop();
  }
});

test('tokens are UUID v4 and distinct', async () => {
  const stack = await startStack();
  try {
    const s = await seed(stack.app);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { token } = await stack.app.services.consoleTokens.issue(s.active);
      assert.match(token, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(token);
    }
    assert.equal(seen.size, 200);
  } finally {
    await stack.stop();
  }
});

test('a presented token is hashed once: its hash is the store key, its ref the log reference; peek and consume take it', async () => {
  const stack = await startStack();
  try {
    const s = await seed(stack.app);
    const svc = stack.app.services.consoleTokens;
    const a = await svc.issue(s.active);
    const p = presentedToken(a.token);
    assert.equal(p.hash, consoleTokenHash(a.token));
    assert.equal(p.hash, a.record.hash);
    assert.equal(p.ref, tokenRef(a.token));
    assert.equal((await svc.peek(p)).state, 'valid');
    assert.equal((await svc.consume(p, 'n')).ok, true);
    assert.equal((await svc.peek(p)).state, 'used');
    assert.deepEqual(await svc.consume(p, 'n'), { ok: false, reason: 'used' });
    // Not a UUID: unknown without a store round trip, as the string form.
    assert.equal((await svc.peek(presentedToken('nope'))).state, 'unknown');
    assert.deepEqual(await svc.consume(presentedToken('nope'), 'n'), { ok: false, reason: 'unknown' });
  } finally {
    await stack.stop();
  }
});
