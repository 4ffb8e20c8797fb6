/**
 * The store contract: every adapter (SQLite, PostgreSQL) must pass this same suite.
 * `open()` returns fresh, empty stores; several opens of the same database (for cross-process
 * races) come from `openSecond()` when the adapter supports it.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Stores } from '../../src/store/stores.js';
import type { AccessKey } from '../../src/identity/types.js';
import type { Server } from '../../src/inventory/types.js';
import { ConflictError } from '../../src/errors.js';

export interface ContractTarget {
  name: string;
  /** Fresh empty stores. */
  open(): Promise<Stores>;
  /** A second handle on the same database as the last open() (another "process"). */
  openSecond?(): Promise<Stores>;
  /** Cleanup after the suite. */
  teardown?(): Promise<void>;
  /** Whether backend locks exclude holders of other handles too (PostgreSQL; SQLite is one node, one process). */
  locksAcrossHandles?: boolean;
}

const hex = (n: number): string => n.toString(16).padStart(32, '0');

async function seedProject(s: Stores, n = 1): Promise<{ domainId: string; projectId: string; userId: string }> {
  const domainId = hex(1000 + n);
  const projectId = hex(2000 + n);
  const userId = hex(3000 + n);
  await s.identity.insertDomain({ id: domainId, name: `dom${n}`, createdAt: 1 });
  await s.identity.insertProject({ id: projectId, name: `proj${n}`, domainId, createdAt: 2 });
  await s.identity.insertUser({ id: userId, domainId, name: 'u', passwordHash: 'scrypt$x', actions: ['*'], createdAt: 3 });
  return { domainId, projectId, userId };
}

function server(projectId: string, over: Partial<Server> = {}): Server {
  return {
    id: randomUUID(), projectId, name: 'web', status: 'ACTIVE', availabilityZone: 'az1', createdAt: 10, updatedAt: 10,
    console: { kind: 'static', host: '127.0.0.1', port: 5900, auth: 'vnc-password', passwordSealed: 'v1:a:b:c', tls: null }, consoleRevision: 1, ...over,
  };
}

export function runStoreContract(t: ContractTarget): void {
  describe(`store contract: ${t.name}`, () => {
    let s: Stores;
    before(async () => {
      s = await t.open();
    });
    after(async () => {
      await s.close();
      await t.teardown?.();
    });

    test('domains, projects, users round-trip; names unique', async () => {
      const { domainId, projectId, userId } = await seedProject(s, 1);
      assert.deepEqual(await s.identity.getDomain(domainId), { id: domainId, name: 'dom1', createdAt: 1 });
      assert.deepEqual(await s.identity.getDomainByName('dom1'), { id: domainId, name: 'dom1', createdAt: 1 });
      assert.deepEqual(await s.identity.getProject(projectId), { id: projectId, name: 'proj1', domainId, createdAt: 2, description: '' });
      assert.equal((await s.identity.getUserByName(domainId, 'u'))?.id, userId);
      assert.deepEqual((await s.identity.getUser(userId))?.actions, ['*']);
      assert.equal(await s.identity.getDomain(hex(9)), null);
      assert.equal(await s.identity.getProject(hex(9)), null);
      await assert.rejects(s.identity.insertDomain({ id: hex(99), name: 'dom1', createdAt: 1 }), ConflictError);
      await assert.rejects(s.identity.insertProject({ id: hex(98), name: 'proj1', domainId, createdAt: 1 }), ConflictError);
      assert.ok((await s.identity.listProjects()).some((p) => p.id === projectId));
    });

    test('access keys: round-trip, list, delete', async () => {
      const { projectId, userId } = await seedProject(s, 2);
      const ak = 'AK' + 'X'.repeat(18);
      await s.identity.insertAccessKey({ ak, userId, projectId, skSealed: 'v1:x', actions: ['ecs:*'], createdAt: 5 });
      assert.deepEqual(await s.identity.getAccessKey(ak), {
        ak, userId, projectId, skSealed: 'v1:x', actions: ['ecs:*'], createdAt: 5, status: 'active', description: '', expiresAt: null, securityTokenHash: null, issuedBy: null,
      });
      assert.equal((await s.identity.listAccessKeys(userId)).length, 1);
      assert.equal(await s.identity.deleteAccessKey(ak), true);
      assert.equal(await s.identity.getAccessKey(ak), null);
    });

    test('identity lifecycle: users updated, listed, deleted with their keys and tokens; key limit; key status; temporary keys purged; projects updated and deleted', async () => {
      const { domainId, projectId, userId } = await seedProject(s, 711);
      const u = await s.identity.getUser(userId);
      assert.equal(u?.enabled, true);
      assert.equal(u?.admin, false);
      const after = await s.identity.updateUser(userId, { enabled: false, admin: true, description: 'ops', passwordHash: 'scrypt$y' });
      assert.deepEqual({ enabled: after?.enabled, admin: after?.admin, description: after?.description, hash: after?.passwordHash }, { enabled: false, admin: true, description: 'ops', hash: 'scrypt$y' });
      assert.equal(await s.identity.updateUser(hex(77), { enabled: true }), null);
      await s.identity.insertUser({ id: hex(3901), domainId, name: 'v', passwordHash: 'scrypt$x', actions: ['*'], createdAt: 4 });
      await assert.rejects(s.identity.updateUser(hex(3901), { name: 'u' }), ConflictError);
      assert.deepEqual((await s.identity.listUsers(domainId)).map((x) => x.name), ['u', 'v']);
      // Two permanent keys at most; temporary keys do not count.
      const key = (ak: string, extra: Partial<AccessKey> = {}): AccessKey => ({ ak, userId, projectId, skSealed: 'v1:x', actions: ['*'], createdAt: 6, ...extra });
      assert.equal(await s.identity.insertPermanentAccessKey(key('AKP1' + 'A'.repeat(16)), 2), true);
      await s.identity.insertAccessKey(key('AKT1' + 'A'.repeat(16), { expiresAt: 100, securityTokenHash: 'ab', issuedBy: 'token:cd' }));
      assert.equal(await s.identity.insertPermanentAccessKey(key('AKP2' + 'A'.repeat(16)), 2), true);
      assert.equal(await s.identity.insertPermanentAccessKey(key('AKP3' + 'A'.repeat(16)), 2), false);
      assert.equal(await s.identity.getAccessKey('AKP3' + 'A'.repeat(16)), null);
      const temp = await s.identity.getAccessKey('AKT1' + 'A'.repeat(16));
      assert.deepEqual({ e: temp?.expiresAt, h: temp?.securityTokenHash, i: temp?.issuedBy }, { e: 100, h: 'ab', i: 'token:cd' });
      assert.equal((await s.identity.updateAccessKey('AKP1' + 'A'.repeat(16), { status: 'inactive', description: 'old' }))?.status, 'inactive');
      assert.equal((await s.identity.getAccessKey('AKP1' + 'A'.repeat(16)))?.description, 'old');
      assert.equal(await s.identity.purgeTemporaryAccessKeys(100), 1);
      assert.equal((await s.identity.listAccessKeys(userId)).length, 2);
      // Tokens of a user: all but one, then the user with everything.
      for (const h of ['t1', 't2', 't3']) await s.identity.insertIamToken({ hash: h.padEnd(64, '0'), userId, projectId, issuedAt: 1, expiresAt: 10 ** 13 });
      assert.deepEqual((await s.identity.deleteUserIamTokens(userId, 't1'.padEnd(64, '0'))).sort(), ['t2'.padEnd(64, '0'), 't3'.padEnd(64, '0')]);
      assert.equal(await s.identity.deleteProject(projectId), 'in-use');
      assert.equal(await s.identity.deleteUser(userId), true);
      assert.equal(await s.identity.getUser(userId), null);
      assert.equal(await s.identity.getIamToken('t1'.padEnd(64, '0')), null);
      assert.deepEqual(await s.identity.listAccessKeys(userId), []);
      assert.equal((await s.identity.updateProject(projectId, { name: 'renamed', description: 'd' }))?.name, 'renamed');
      assert.equal(await s.identity.deleteProject(projectId), 'deleted');
      assert.equal(await s.identity.deleteProject(projectId), 'missing');
    });

    test('console tokens remember who issued them; revoking by credential or by user spares used tokens', async () => {
      const { projectId } = await seedProject(s, 712);
      const tok = (hash: string, issuedBy: string, user: string, consumedAt: number | null = null) => ({
        hash: hash.padEnd(64, '0'), serverId: 'srv-4', projectId, consoleRevision: 1, issuedAt: 1, expiresAt: 10 ** 13, consumedAt, consumedBy: consumedAt ? 'n' : null,
        revokedAt: null, revokedReason: null, issuedBy, issuedByUser: user,
      });
      await s.consoleTokens.insertConsoleToken(tok('c1', 'ak:A', 'u1'));
      await s.consoleTokens.insertConsoleToken(tok('c2', 'ak:B', 'u1'));
      await s.consoleTokens.insertConsoleToken(tok('c3', 'ak:A', 'u1', 5));
      await s.consoleTokens.insertConsoleToken(tok('c4', 'token:x', 'u2'));
      assert.equal((await s.consoleTokens.getConsoleToken('c1'.padEnd(64, '0')))?.issuedBy, 'ak:A');
      assert.equal(await s.consoleTokens.revokeIssuedConsoleTokens({ issuedBy: 'ak:A', userId: 'u1' }, 'credential-revoked', 9), 1);
      assert.equal((await s.consoleTokens.getConsoleToken('c1'.padEnd(64, '0')))?.revokedReason, 'credential-revoked');
      assert.equal((await s.consoleTokens.getConsoleToken('c3'.padEnd(64, '0')))?.revokedReason, null);
      assert.equal(await s.consoleTokens.revokeIssuedConsoleTokens({ userId: 'u1' }, 'credential-revoked', 9), 1);
      assert.equal((await s.consoleTokens.getConsoleToken('c4'.padEnd(64, '0')))?.revokedReason, null);
      const id = await s.changes.appendChange({ at: 9, kind: 'credential-revoked', serverId: null, sessionId: null, credential: 'user:u1' });
      assert.deepEqual((await s.changes.changesSince(id - 1, 10))[0], { id, at: 9, kind: 'credential-revoked', serverId: null, sessionId: null, credential: 'user:u1' });
    });

    test('signature failures: counted per (AK, address), lock at the threshold and restart, expire, clear, purge', async () => {
      const f = s.signatureFailures;
      const ak = 'AK' + 'F'.repeat(18);
      // Any AK is counted, known or not: the store never looks at access_keys.
      for (let i = 1; i <= 4; i++) {
        assert.deepEqual(await f.recordSignatureFailure(ak, '10.0.0.1', 1000 + i, 5, 300_000), { failures: i, lockedUntil: null, locked: false, lockedNow: false });
      }
      assert.deepEqual(await f.getSignatureFailures(ak, '10.0.0.1', 1004), { failures: 4, lockedUntil: null });
      // Another address of the same AK has its own count.
      assert.equal((await f.recordSignatureFailure(ak, '10.0.0.2', 1004, 5, 300_000)).failures, 1);
      const fifth = await f.recordSignatureFailure(ak, '10.0.0.1', 2000, 5, 300_000);
      assert.deepEqual(fifth, { failures: 0, lockedUntil: 302_000, locked: true, lockedNow: true });
      // A failure during the lock (a concurrent request) counts on and keeps the lock.
      assert.deepEqual(await f.recordSignatureFailure(ak, '10.0.0.1', 3000, 5, 300_000), { failures: 1, lockedUntil: 302_000, locked: true, lockedNow: false });
      assert.deepEqual(await f.getSignatureFailures(ak, '10.0.0.1', 3000), { failures: 1, lockedUntil: 302_000 });
      // Forgotten lockMs after the last failure; the next failure starts over, unlocked.
      assert.equal(await f.getSignatureFailures(ak, '10.0.0.1', 303_000), null);
      assert.deepEqual(await f.recordSignatureFailure(ak, '10.0.0.1', 303_000, 5, 300_000), { failures: 1, lockedUntil: null, locked: false, lockedNow: false });
      // Threshold 1: the first failure locks.
      assert.deepEqual(await f.recordSignatureFailure(ak, '10.0.0.3', 5000, 1, 1000), { failures: 0, lockedUntil: 6000, locked: true, lockedNow: true });
      // Clearing one address, then all.
      assert.deepEqual(await f.clearSignatureFailures(ak, '10.0.0.3'), [{ ak, address: '10.0.0.3', failures: 0, lockedUntil: 6000 }]);
      assert.deepEqual(await f.clearSignatureFailures(ak, '10.0.0.3'), []);
      assert.deepEqual((await f.clearSignatureFailures(ak, null)).map((r) => [r.address, r.failures]), [['10.0.0.1', 1], ['10.0.0.2', 1]]);
      assert.equal(await f.getSignatureFailures(ak, '10.0.0.1', 303_000), null);
      // Purge deletes what expired at `now`, nothing else.
      await f.recordSignatureFailure(ak, '10.0.0.4', 10_000, 5, 1000);
      await f.recordSignatureFailure(ak, '10.0.0.5', 10_500, 5, 1000);
      assert.equal(await f.purgeSignatureFailures(11_000), 1);
      assert.equal((await f.getSignatureFailures(ak, '10.0.0.5', 11_000))?.failures, 1);
      assert.equal(await f.purgeSignatureFailures(12_000), 1);
    });

    test('signature failures: trim keeps the records that expire last', async () => {
      const f = s.signatureFailures;
      for (let i = 0; i < 12; i++) await f.recordSignatureFailure(`AKTRIM${String(i).padStart(14, '0')}`, '10.1.0.1', 100_000 + i, 5, 1000);
      assert.equal(await f.trimSignatureFailures(5), 7);
      assert.equal(await f.trimSignatureFailures(5), 0);
      for (let i = 0; i < 12; i++) {
        const kept = await f.getSignatureFailures(`AKTRIM${String(i).padStart(14, '0')}`, '10.1.0.1', 100_000);
        assert.equal(kept !== null, i >= 7, `record ${i}`);
      }
      await f.purgeSignatureFailures(Number.MAX_SAFE_INTEGER);
    });

    test('signature failures: 60 concurrent failures of one pair are all counted', async () => {
      const second = t.openSecond ? await t.openSecond() : null;
      const both = [s, second ?? s];
      const ak = 'AK' + 'R'.repeat(18);
      // Threshold 7: 60 = 8 * 7 + 4. Exactly 8 failures set a lock; 4 are left counted.
      const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => both[i % 2]!.signatureFailures.recordSignatureFailure(ak, '10.2.0.1', 1000, 7, 60_000)));
      await second?.close();
      assert.equal(outcomes.filter((o) => o.lockedNow).length, 8);
      // Each failure saw the one before it: the counts returned are those of 60 failures in a row.
      const inARow = Array.from({ length: 60 }, (_, i) => (i + 1) % 7);
      assert.deepEqual(outcomes.map((o) => o.failures).sort((a, b) => a - b), inARow.sort((a, b) => a - b));
      assert.deepEqual(await s.signatureFailures.getSignatureFailures(ak, '10.2.0.1', 1000), { failures: 4, lockedUntil: 61_000 });
    });

    test('audit: actor, target, request id and client address round-trip; list by target', async () => {
      const target = `ak:AK${randomUUID().replace(/-/g, '').slice(0, 18).toUpperCase()}`;
      await s.audit.appendAudit({
        at: 1, kind: 'ak-unlocked', nodeId: 'n', projectId: null, serverId: null, tokenRef: null, sessionId: null, detail: { address: '*' },
        actorUserId: hex(5), actorCredential: 'cli:root', target, requestId: 'f'.repeat(32), clientAddress: '10.3.0.1',
      });
      const [e] = await s.audit.listAudit({ target });
      assert.deepEqual({ ...e, id: undefined }, {
        id: undefined, at: 1, kind: 'ak-unlocked', nodeId: 'n', projectId: null, serverId: null, tokenRef: null, sessionId: null, detail: { address: '*' },
        actorUserId: hex(5), actorCredential: 'cli:root', target, requestId: 'f'.repeat(32), clientAddress: '10.3.0.1',
      });
      assert.equal((await s.audit.listAudit({ target: 'ak:none' })).length, 0);
    });

    test('IAM tokens: insert, get, delete, purge by expiry', async () => {
      const { projectId, userId } = await seedProject(s, 3);
      await s.identity.insertIamToken({ hash: 'a'.repeat(64), userId, projectId, issuedAt: 1, expiresAt: 100 });
      await s.identity.insertIamToken({ hash: 'b'.repeat(64), userId, projectId, issuedAt: 1, expiresAt: 200 });
      assert.equal((await s.identity.getIamToken('a'.repeat(64)))?.expiresAt, 100);
      assert.equal(await s.identity.purgeIamTokens(150), 1);
      assert.equal(await s.identity.getIamToken('a'.repeat(64)), null);
      assert.equal(await s.identity.deleteIamToken('b'.repeat(64)), true);
      assert.equal(await s.identity.deleteIamToken('b'.repeat(64)), false);
    });

    test('servers: insert, filter, count, update bumps revision on console change, delete', async () => {
      const { projectId } = await seedProject(s, 4);
      const a = server(projectId, { name: 'a', createdAt: 1 });
      const b = server(projectId, { name: 'b', status: 'SHUTOFF', createdAt: 2 });
      await s.servers.insertServer(a);
      await s.servers.insertServer(b);
      assert.deepEqual(await s.servers.getServer(a.id), a);
      assert.equal(await s.servers.countServers({ projectId }), 2);
      assert.deepEqual((await s.servers.listServers({ projectId })).map((x) => x.name), ['a', 'b']);
      assert.deepEqual((await s.servers.listServers({ projectId, limit: 1, offset: 1 })).map((x) => x.name), ['b']);
      assert.deepEqual((await s.servers.listServers({ projectId, status: 'SHUTOFF' })).map((x) => x.name), ['b']);
      assert.deepEqual((await s.servers.listServers({ projectId, name: 'a' })).map((x) => x.id), [a.id]);
      await assert.rejects(s.servers.insertServer(a), ConflictError);
      const st = await s.servers.updateServer(a.id, { status: 'SHUTOFF' }, 50);
      assert.equal(st?.before.status, 'ACTIVE');
      assert.equal(st?.after.status, 'SHUTOFF');
      assert.equal(st?.after.consoleRevision, 1);
      assert.equal(st?.after.updatedAt, 50);
      const c = await s.servers.updateServer(a.id, { console: { kind: 'static', host: 'h2', port: 5901, auth: 'none', passwordSealed: null, tls: null } }, 60);
      assert.equal(c?.after.consoleRevision, 2);
      assert.deepEqual((await s.servers.getServer(a.id))?.console, { kind: 'static', host: 'h2', port: 5901, auth: 'none', passwordSealed: null, tls: null });
      assert.equal(await s.servers.updateServer(randomUUID(), { status: 'ACTIVE' }, 1), null);
      assert.equal((await s.servers.deleteServer(a.id))?.id, a.id);
      assert.equal(await s.servers.deleteServer(a.id), null);
      assert.equal(await s.servers.getServer(a.id), null);
    });

    test('console tokens: consume once; used, expired and unknown told apart; revoke; purge', async () => {
      const { projectId } = await seedProject(s, 5);
      const srv = randomUUID();
      const rec = { hash: 'c'.repeat(64), serverId: srv, projectId, kind: 'serial' as const, consoleRevision: 1, issuedAt: 0, expiresAt: 1000, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null };
      await s.consoleTokens.insertConsoleToken(rec);
      await s.consoleTokens.insertConsoleToken({ ...rec, hash: 'd'.repeat(64) });
      await s.consoleTokens.insertConsoleToken({ ...rec, hash: 'e'.repeat(64), serverId: randomUUID() });
      assert.deepEqual(await s.consoleTokens.consumeConsoleToken('c'.repeat(64), 1000, 'n1'), { ok: false, reason: 'expired' });
      const won = await s.consoleTokens.consumeConsoleToken('c'.repeat(64), 500, 'n1');
      assert.equal(won.ok, true);
      assert.equal(won.ok && won.token.consumedBy, 'n1');
      assert.equal(won.ok && won.token.kind, 'serial', 'the token kind round-trips');
      assert.equal(won.ok && won.token.consumedAt, 500);
      assert.deepEqual(await s.consoleTokens.consumeConsoleToken('c'.repeat(64), 501, 'n2'), { ok: false, reason: 'used' });
      assert.deepEqual(await s.consoleTokens.consumeConsoleToken('f'.repeat(64), 1, 'n1'), { ok: false, reason: 'unknown' });
      assert.equal((await s.consoleTokens.getConsoleToken('c'.repeat(64)))?.consumedAt, 500);
      // Revoked tokens are kept, with the reason, until they expire.
      assert.equal(await s.consoleTokens.revokeServerConsoleTokens(srv, 'server-stopped', 600), 2);
      assert.equal(await s.consoleTokens.revokeServerConsoleTokens(srv, 'server-deleted', 700), 0, 'the first reason stays');
      assert.deepEqual(await s.consoleTokens.consumeConsoleToken('d'.repeat(64), 1, 'n1'), { ok: false, reason: 'revoked', revokedReason: 'server-stopped' });
      const d = await s.consoleTokens.getConsoleToken('d'.repeat(64));
      assert.deepEqual([d?.revokedAt, d?.revokedReason, d?.consumedAt], [600, 'server-stopped', null]);
      assert.deepEqual(await s.consoleTokens.consumeConsoleToken('c'.repeat(64), 1, 'n1'), { ok: false, reason: 'used' }, 'a used token stays "used"');
      assert.equal((await s.consoleTokens.getConsoleToken('e'.repeat(64)))?.revokedReason, null, 'other servers keep their tokens');
      assert.equal(await s.consoleTokens.purgeConsoleTokens(999), 0);
      assert.equal(await s.consoleTokens.purgeConsoleTokens(1000), 3);
    });

    test('console tokens: a consume is given back only by its node, once; revocation still holds', async () => {
      const { projectId } = await seedProject(s, 8);
      const srv = randomUUID();
      const rec = { hash: '8'.repeat(64), serverId: srv, projectId, kind: 'vnc' as const, consoleRevision: 1, issuedAt: 0, expiresAt: 10_000, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null };
      await s.consoleTokens.insertConsoleToken(rec);
      const first = await s.consoleTokens.consumeConsoleToken(rec.hash, 100, 'n1');
      assert.ok(first.ok);
      assert.equal(await s.consoleTokens.releaseConsoleToken(rec.hash, 100, 'n2'), false, 'another node cannot');
      assert.equal(await s.consoleTokens.releaseConsoleToken(rec.hash, 99, 'n1'), false, 'another consume cannot');
      assert.equal(await s.consoleTokens.releaseConsoleToken(rec.hash, 100, 'n1'), true);
      assert.equal(await s.consoleTokens.releaseConsoleToken(rec.hash, 100, 'n1'), false, 'once');
      assert.equal((await s.consoleTokens.getConsoleToken(rec.hash))?.consumedAt, null);
      const again = await s.consoleTokens.consumeConsoleToken(rec.hash, 200, 'n2');
      assert.equal(again.ok && again.token.consumedBy, 'n2');
      assert.equal(await s.consoleTokens.revokeServerConsoleTokens(srv, 'console-changed', 300), 1);
      assert.equal(await s.consoleTokens.releaseConsoleToken(rec.hash, 200, 'n2'), true);
      assert.deepEqual(await s.consoleTokens.consumeConsoleToken(rec.hash, 400, 'n1'), { ok: false, reason: 'revoked', revokedReason: 'console-changed' });
    });

    test('console tokens: the winner of a consume gets its server as the store has it then (the proxy\'s re-check)', async () => {
      const { projectId } = await seedProject(s, 17);
      const srv = server(projectId, { consoleRevision: 3 });
      await s.servers.insertServer(srv);
      const rec = { hash: '9'.repeat(64), serverId: srv.id, projectId, kind: 'vnc' as const, consoleRevision: 3, issuedAt: 0, expiresAt: 10_000, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null };
      await s.consoleTokens.insertConsoleToken(rec);
      await s.consoleTokens.insertConsoleToken({ ...rec, hash: 'a'.repeat(64) });
      await s.consoleTokens.insertConsoleToken({ ...rec, hash: 'b'.repeat(64), serverId: randomUUID() });
      const first = await s.consoleTokens.consumeConsoleToken(rec.hash, 100, 'n1');
      assert.deepEqual(first.ok && first.server, { projectId, status: 'ACTIVE', consoleRevision: 3 });
      // Stopped without its tokens revoked (as another node's stop is, until its revocation commits).
      await s.servers.updateServer(srv.id, { status: 'SHUTOFF' }, 20);
      const second = await s.consoleTokens.consumeConsoleToken('a'.repeat(64), 100, 'n1');
      assert.deepEqual(second.ok && second.server, { projectId, status: 'SHUTOFF', consoleRevision: 3 });
      const gone = await s.consoleTokens.consumeConsoleToken('b'.repeat(64), 100, 'n1');
      assert.equal(gone.ok && gone.server, null, 'no server: null');
    });

    test('console tokens: 50 concurrent consumes, exactly one wins', async () => {
      const { projectId } = await seedProject(s, 6);
      const hash = '7'.repeat(64);
      await s.consoleTokens.insertConsoleToken({ hash, serverId: randomUUID(), projectId, kind: 'vnc' as const, consoleRevision: 1, issuedAt: 0, expiresAt: 10_000, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null });
      const second = t.openSecond ? await t.openSecond() : null;
      const handles = second ? [s, second] : [s];
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => handles[i % handles.length]!.consoleTokens.consumeConsoleToken(hash, 1, `n${i}`)));
      await second?.close();
      assert.equal(results.filter((r) => r.ok).length, 1);
      assert.equal(results.filter((r) => !r.ok && r.reason === 'used').length, 49);
    });

    test('audit: append and list by server, kind, since', async () => {
      const srv = randomUUID();
      for (const kind of ['issued', 'connected', 'closed'] as const) {
        await s.audit.appendAudit({ at: 1, kind, nodeId: 'n', projectId: null, serverId: srv, tokenRef: 'abcd1234', sessionId: null, detail: { bytes: 3, ok: true, why: null } });
      }
      const all = await s.audit.listAudit({ serverId: srv });
      assert.deepEqual(all.map((e) => e.kind), ['issued', 'connected', 'closed']);
      assert.deepEqual(all[2]?.detail, { bytes: 3, ok: true, why: null });
      assert.deepEqual((await s.audit.listAudit({ serverId: srv, kind: 'connected' })).length, 1);
      assert.deepEqual((await s.audit.listAudit({ serverId: srv, sinceId: all[0]!.id! })).length, 2);
    });

    test('sessions: insert, list fresh only, get, delete, purge stale', async () => {
      const rec = (id: string, nodeId: string, serverId: string, at: number) => ({ id, nodeId, instanceId: `${nodeId}-1`, serverId, projectId: hex(1), tokenRef: 'abcd1234', clientAddress: '127.0.0.1', startedAt: at, heartbeatAt: at });
      const srv = randomUUID();
      await s.sessions.insertSession(rec('s1', 'nodeA', srv, 500));
      await s.sessions.insertSession(rec('s2', 'nodeB', srv, 100));
      await s.sessions.insertSession(rec('s3', 'nodeA', randomUUID(), 500));
      await s.sessions.insertSession(rec('s3', 'nodeA', randomUUID(), 500));
      assert.deepEqual((await s.sessions.listSessions({ freshSince: 400 })).map((x) => x.id).sort(), ['s1', 's3']);
      assert.deepEqual((await s.sessions.listSessions({ serverId: srv, freshSince: 0 })).map((x) => x.id).sort(), ['s1', 's2']);
      assert.deepEqual(await s.sessions.getSession('s1'), rec('s1', 'nodeA', srv, 500));
      assert.equal(await s.sessions.purgeStaleSessions(400), 1);
      assert.equal(await s.sessions.getSession('s2'), null);
      await s.sessions.deleteSession('s1');
      await s.sessions.deleteSession('s1');
      assert.deepEqual((await s.sessions.listSessions({ freshSince: 0 })).map((x) => x.id), ['s3']);
      await s.sessions.deleteSession('s3');
    });

    test('sessions: a sync writes exactly the live set of its process, and replaces earlier processes of its node on request', async () => {
      const srv = randomUUID();
      const row = (id: string, nodeId: string, instanceId: string, at = 100) => ({ id, nodeId, instanceId, serverId: srv, projectId: hex(1), tokenRef: 'abcd1234', clientAddress: '127.0.0.1', startedAt: 50, heartbeatAt: at });
      const me = { nodeId: 'syncN', instanceId: 'i2' };
      const ids = async (): Promise<string[]> => (await s.sessions.listSessions({ serverId: srv, freshSince: 0 })).map((x) => `${x.id}@${x.instanceId}:${x.heartbeatAt}`).sort();
      await s.sessions.insertSession(row('dead1', 'syncN', 'i1'));
      await s.sessions.insertSession(row('ended', 'syncN', 'i2'));
      await s.sessions.insertSession(row('live1', 'syncN', 'i2'));
      await s.sessions.insertSession(row('other', 'otherNode', 'x'));
      // live2 was purged (its row is gone) and comes back; ended goes; the earlier process's row stays unless asked.
      assert.equal(await s.sessions.syncSessions(me, [row('live1', 'syncN', 'i2'), row('live2', 'syncN', 'i2')], 900, false), 1);
      assert.deepEqual(await ids(), ['dead1@i1:100', 'live1@i2:900', 'live2@i2:900', 'other@x:100']);
      assert.equal(await s.sessions.syncSessions(me, [row('live1', 'syncN', 'i2')], 1000, true), 2);
      assert.deepEqual(await ids(), ['live1@i2:1000', 'other@x:100']);
      // A touch refreshes this process's rows only, and counts them.
      assert.equal(await s.sessions.touchSessions(me, 1050), 1);
      assert.equal(await s.sessions.touchSessions({ nodeId: 'syncN', instanceId: 'i1' }, 1060), 0);
      assert.deepEqual(await ids(), ['live1@i2:1050', 'other@x:100']);
      assert.equal(await s.sessions.syncSessions(me, [], 1100, true), 1);
      assert.deepEqual(await ids(), ['other@x:100']);
      await s.sessions.deleteSession('other');
    });

    test('change feed: ids increase, since, latest, purge', async () => {
      const start = await s.changes.latestChangeId();
      const a = await s.changes.appendChange({ at: 10, kind: 'server-stopped', serverId: 'srv', sessionId: null });
      const b = await s.changes.appendChange({ at: 20, kind: 'session-kill', serverId: null, sessionId: 'sess' });
      assert.ok(b > a && a > start);
      assert.equal(await s.changes.latestChangeId(), b);
      assert.deepEqual(await s.changes.changesSince(start, 10), [
        { id: a, at: 10, kind: 'server-stopped', serverId: 'srv', sessionId: null },
        { id: b, at: 20, kind: 'session-kill', serverId: null, sessionId: 'sess' },
      ]);
      assert.deepEqual((await s.changes.changesSince(a, 10)).map((c) => c.id), [b]);
      assert.equal((await s.changes.changesSince(start, 1)).length, 1);
      assert.ok((await s.changes.purgeChanges(15)) >= 1);
      assert.deepEqual((await s.changes.changesSince(start, 10)).map((c) => c.id), [b]);
      // The newest change stays, however old: a follower that was away sees the gap after its last id.
      assert.equal(await s.changes.purgeChanges(1000), 0);
      assert.deepEqual((await s.changes.changesSince(start, 10)).map((c) => c.id), [b]);
      const c = await s.changes.appendChange({ at: 30, kind: 'session-kill', serverId: 'srv', sessionId: null });
      assert.equal(await s.changes.purgeChanges(1000), 1);
      assert.deepEqual(await s.changes.changesSince(a, 10), [{ id: c, at: 30, kind: 'session-kill', serverId: 'srv', sessionId: null }]);
    });

    test('master key checks: the first one is recorded exactly once, also under a race; later ones are not', async () => {
      assert.deepEqual(await s.keyChecks.listKeyChecks(), []);
      const check = (i: number) => ({ keyId: i.toString(16).padStart(16, '0'), canary: `v1:canary-${i}`, createdAt: 100 + i });
      const second = t.openSecond ? await t.openSecond() : null;
      const handles = second ? [s, second] : [s];
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => handles[i % handles.length]!.keyChecks.initKeyCheck(check(i))));
      await second?.close();
      const held = await s.keyChecks.listKeyChecks();
      assert.equal(held.length, 1);
      assert.ok(Array.from({ length: 20 }, (_, i) => check(i)).some((c) => c.keyId === held[0]!.keyId && c.canary === held[0]!.canary && c.createdAt === held[0]!.createdAt));
      for (const r of results) assert.deepEqual(r, held);
      assert.deepEqual(await s.keyChecks.initKeyCheck(check(99)), held);
    });

    test('sealed secrets are listed with the associated data they were sealed with', async () => {
      const { projectId, userId } = await seedProject(s, 7);
      const ak = 'AK' + 'S'.repeat(18);
      await s.identity.insertAccessKey({ ak, userId, projectId, skSealed: 'v1:sk-sealed', actions: ['*'], createdAt: 1 });
      const withPassword = server(projectId, { createdAt: 2, console: { kind: 'static', host: '127.0.0.1', port: 5900, auth: 'vnc-password', passwordSealed: 'v1:vnc-sealed', tls: null } });
      const without = server(projectId, { createdAt: 3, console: { kind: 'static', host: '127.0.0.1', port: 5900, auth: 'none', passwordSealed: null, tls: null } });
      await s.servers.insertServer(withPassword);
      await s.servers.insertServer(without);
      const listed = await s.keyChecks.listSealedSecrets(100_000);
      assert.ok(listed.some((x) => x.aad === `sk:${ak}` && x.sealed === 'v1:sk-sealed'));
      assert.ok(listed.some((x) => x.aad === `vnc:${withPassword.id}` && x.sealed === 'v1:vnc-sealed'));
      assert.ok(!listed.some((x) => x.aad === `vnc:${without.id}`));
      assert.equal((await s.keyChecks.listSealedSecrets(1)).length, 1);
    });

    test('master key checks for a rotation: another is added beside the first (once), one is removed by key id', async () => {
      const held = await s.keyChecks.listKeyChecks();
      assert.equal(held.length, 1);
      const next = { keyId: 'ffffffffffffffff', canary: 'v1:canary-next', createdAt: 5_000 };
      await s.keyChecks.addKeyCheck(next);
      await s.keyChecks.addKeyCheck({ ...next, canary: 'v1:not-this-one' });
      assert.deepEqual(await s.keyChecks.listKeyChecks(), [...held, next]);
      assert.equal(await s.keyChecks.removeKeyCheck(held[0]!.keyId), true);
      assert.equal(await s.keyChecks.removeKeyCheck(held[0]!.keyId), false);
      assert.deepEqual(await s.keyChecks.listKeyChecks(), [next]);
    });

    test('sealed secrets: paged in byte order of their associated data; re-sealed only where the row still holds what was read', async () => {
      const { projectId, userId } = await seedProject(s, 9);
      // Mixed case and digits: byte order (A < Z < a), not a locale's.
      const aks = ['AKaaaaaaaaaaaaaaaaaa', 'AKZZZZZZZZZZZZZZZZZZ', 'AK0000000000000000000'.slice(0, 20), 'AKbbbbbbbbbbbbbbbbbb'];
      for (const [i, ak] of aks.entries()) {
        await s.identity.insertAccessKey({ ak, userId, projectId, skSealed: `v1:old-${ak}`, actions: ['*'], createdAt: 10 + i });
      }
      const srv = server(projectId, { createdAt: 20, console: { kind: 'static', host: '127.0.0.1', port: 5900, auth: 'vnc-password', passwordSealed: 'v1:old-vnc', tls: null } });
      await s.servers.insertServer(srv);
      const all: string[] = [];
      for (let after: string | null = null; ;) {
        const page = await s.keyChecks.sealedSecretsAfter(after, 2);
        if (page.length === 0) break;
        assert.ok(page.length <= 2);
        all.push(...page.map((p) => p.aad));
        after = page[page.length - 1]!.aad;
      }
      const expected = [...new Set(all)].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0));
      assert.deepEqual(all, expected, 'byte order, each once');
      for (const ak of aks) assert.ok(all.includes(`sk:${ak}`));
      assert.ok(all.includes(`vnc:${srv.id}`));
      assert.equal(all.length, (await s.keyChecks.listSealedSecrets(100_000)).length);

      // One row changed since it was read: that one is left alone, the others are written.
      await s.servers.updateServer(srv.id, { console: { kind: 'static', host: '127.0.0.1', port: 5900, auth: 'vnc-password', passwordSealed: 'v1:changed-meanwhile', tls: null } }, 30);
      const n = await s.keyChecks.replaceSealedSecrets([
        { aad: `sk:${aks[0]}`, from: `v1:old-${aks[0]}`, to: 'v1:new-0' },
        { aad: `sk:${aks[1]}`, from: `v1:old-${aks[1]}`, to: 'v1:new-1' },
        { aad: `vnc:${srv.id}`, from: 'v1:old-vnc', to: 'v1:new-vnc' },
      ]);
      assert.equal(n, 2);
      assert.equal((await s.identity.getAccessKey(aks[0]!))!.skSealed, 'v1:new-0');
      assert.equal((await s.identity.getAccessKey(aks[1]!))!.skSealed, 'v1:new-1');
      assert.equal((await s.identity.getAccessKey(aks[2]!))!.skSealed, `v1:old-${aks[2]}`);
      assert.equal((await s.servers.getServer(srv.id))!.console.passwordSealed, 'v1:changed-meanwhile');
      assert.equal(await s.keyChecks.replaceSealedSecrets([]), 0);
    });

    test('servers: every console target kind round-trips (static with TLS, qemu-qmp, libvirt), and changes kind', async () => {
      const { projectId } = await seedProject(s, 61);
      const targets: Server['console'][] = [
        { kind: 'static', host: 'hv1.example.test', port: 5901, auth: 'none', passwordSealed: null, tls: { serverName: 'hv1.example.test' } },
        { kind: 'qemu-qmp', host: '127.0.0.1', port: 5902, qmp: 'unix:/run/qemu/vm1.qmp', auth: 'one-time-password', passwordSealed: null, tls: null },
        { kind: 'qemu-qmp', host: '10.0.0.5', port: 5903, qmp: 'tcp:10.0.0.5:4444', auth: 'one-time-password', passwordSealed: null, tls: { serverName: '10.0.0.5' }, serial: 'tcp:10.0.0.5:4555' },
        { kind: 'libvirt', uri: 'qemu:///system', domain: 'vm1', host: null, auth: 'one-time-password', passwordSealed: null, tls: null, serial: 'unix:/run/libvirt/vm1.serial' },
        { kind: 'libvirt', uri: 'qemu+tls://hv2.example.test/system', domain: 'vm2', host: 'hv2.example.test', auth: 'one-time-password', passwordSealed: null, tls: { serverName: 'hv2.example.test' } },
      ];
      const ids: string[] = [];
      for (const console of targets) {
        const srv = server(projectId, { console });
        await s.servers.insertServer(srv);
        ids.push(srv.id);
        assert.deepEqual((await s.servers.getServer(srv.id))?.console, console);
      }
      const r = await s.servers.updateServer(ids[0]!, { console: targets[3]! }, 70);
      assert.deepEqual(r?.after.console, targets[3]);
      assert.equal(r?.after.consoleRevision, 2);
      assert.deepEqual((await s.servers.getServer(ids[0]!))?.console, targets[3]);
      await s.servers.updateServer(ids[3]!, { console: targets[2]! }, 71);
      assert.deepEqual((await s.servers.getServer(ids[3]!))?.console, targets[2]);
    });

    test('backend locks: one holder per key at a time, other keys do not wait, an aborted wait gives up, a failing holder releases', async () => {
      const second = t.locksAcrossHandles && t.openSecond ? await t.openSecond() : null;
      const handles = second ? [s, second] : [s];
      const never = new AbortController().signal;
      try {
        let inside = 0;
        let most = 0;
        const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => handles[i % handles.length]!.backendLocks.withLock('vm-a', never, async () => {
          inside++;
          most = Math.max(most, inside);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
          return i;
        })));
        assert.deepEqual(runs, Array.from({ length: 12 }, (_, i) => i));
        assert.equal(most, 1, 'never two holders of one key at once');

        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let holding!: () => void;
        const started = new Promise<void>((r) => (holding = r));
        const holder = s.backendLocks.withLock('vm-b', never, async () => {
          holding();
          await held;
          return 'holder';
        });
        await started;
        // Another key is free meanwhile.
        assert.equal(await handles[handles.length - 1]!.backendLocks.withLock('vm-c', never, async () => 'other'), 'other');
        // A waiter that gives up never runs.
        const abort = new AbortController();
        let ran = false;
        const waiter = handles[handles.length - 1]!.backendLocks.withLock('vm-b', abort.signal, async () => {
          ran = true;
        });
        setTimeout(() => abort.abort(new Error('gave up')), 50);
        await assert.rejects(waiter, /gave up/);
        assert.equal(ran, false);
        release();
        assert.equal(await holder, 'holder');
        // A holder that throws releases the key.
        await assert.rejects(s.backendLocks.withLock('vm-b', never, async () => {
          throw new Error('holder failed');
        }), /holder failed/);
        assert.equal(await handles[handles.length - 1]!.backendLocks.withLock('vm-b', AbortSignal.timeout(5000), async () => 'free'), 'free');
      } finally {
        await second?.close();
      }
    });

    test('serial output: one node holds a port until its claim runs out; output saved by the holder only, kept across holders, deleted with the server', async () => {
      const id = randomUUID();
      assert.equal(await s.serialOutput.getSerialOutput(id), null);
      assert.equal(await s.serialOutput.claimSerialPort(id, 'n1', 1000, 16_000), true);
      assert.deepEqual(await s.serialOutput.getSerialOutput(id), { serverId: id, holder: 'n1', heldUntil: 16_000, endOffset: 0, data: Buffer.alloc(0), updatedAt: 1000 });
      assert.equal(await s.serialOutput.claimSerialPort(id, 'n2', 2000, 17_000), false, 'held by n1');
      assert.equal(await s.serialOutput.claimSerialPort(id, 'n1', 2000, 17_000), true, 'n1 renews');
      const bytes = Buffer.from([0x00, 0xff, 0x41, 0x0a]);
      assert.equal(await s.serialOutput.saveSerialOutput(id, 'n1', { endOffset: 2_000_004, data: bytes, now: 3000, heldUntil: 18_000 }), true);
      assert.equal(await s.serialOutput.saveSerialOutput(id, 'n2', { endOffset: 9, data: Buffer.from('no'), now: 3000, heldUntil: 18_000 }), false, 'only the holder saves');
      assert.equal(await s.serialOutput.claimSerialPort(id, 'n2', 17_999, 40_000), false);
      assert.equal(await s.serialOutput.claimSerialPort(id, 'n2', 18_000, 40_000), true, 'the claim ran out');
      assert.deepEqual(await s.serialOutput.getSerialOutput(id), { serverId: id, holder: 'n2', heldUntil: 40_000, endOffset: 2_000_004, data: bytes, updatedAt: 3000 });
      assert.equal(await s.serialOutput.saveSerialOutput(id, 'n1', { endOffset: 9, data: Buffer.from('no'), now: 19_000, heldUntil: 30_000 }), false, 'n1 lost it');
      await s.serialOutput.releaseSerialPort(id, 'n1');
      assert.equal((await s.serialOutput.getSerialOutput(id))?.heldUntil, 40_000, 'only the holder lets go');
      await s.serialOutput.releaseSerialPort(id, 'n2');
      assert.equal(await s.serialOutput.claimSerialPort(id, 'n3', 20_000, 35_000), true, 'free once let go');
      await s.serialOutput.deleteSerialOutput(id);
      assert.equal(await s.serialOutput.getSerialOutput(id), null);
    });

    test('recording policies and recordings: upsert, resolve, progress (never backwards), filters, bytes per project, delete', async () => {
      const { projectId } = await seedProject(s, 90);
      const r = s.recordings;
      const policy = { scope: 'project', scopeId: projectId, projectId, enabled: true, keystrokes: false, retentionDays: 30, quotaBytes: 1000, updatedAt: 5, updatedBy: 'cli:root' } as const;
      await r.putRecordingPolicy(policy);
      await r.putRecordingPolicy({ ...policy, retentionDays: 7, updatedAt: 6 });
      await r.putRecordingPolicy({ ...policy, scope: 'server', scopeId: 'srv-1', enabled: false, keystrokes: true, quotaBytes: null });
      const got = await r.recordingPoliciesFor(projectId, 'srv-1');
      assert.equal(got.length, 2);
      assert.deepEqual(got.find((p) => p.scope === 'project'), { ...policy, retentionDays: 7, updatedAt: 6 });
      assert.deepEqual(got.find((p) => p.scope === 'server'), { ...policy, scope: 'server', scopeId: 'srv-1', enabled: false, keystrokes: true, quotaBytes: null });
      assert.equal((await r.recordingPoliciesFor(projectId, 'srv-2')).length, 1);
      assert.equal((await r.listRecordingPolicies(projectId)).length, 2);
      assert.equal(await r.deleteRecordingPolicy('server', 'srv-1'), true);
      assert.equal(await r.deleteRecordingPolicy('server', 'srv-1'), false);

      const rec = (id: string, startedAt: number, over: Record<string, unknown> = {}) => ({
        id, sessionId: `sess-${id}`, projectId, serverId: 'srv-1', nodeId: 'n1', file: `${id}.ecsrec`, sealedKey: 'v1:a:b:c', keystrokes: false,
        startedAt, endedAt: null, expiresAt: startedAt + 100, bytes: 0, chunks: 0, digest: '', durationMs: 0, ...over,
      });
      const a = randomUUID();
      const b = randomUUID();
      await r.insertRecording(rec(a, 1000));
      await r.insertRecording(rec(b, 2000, { serverId: 'srv-2', keystrokes: true }));
      await r.updateRecordingProgress(a, { bytes: 500, chunks: 3, digest: 'ab', durationMs: 4000 });
      // A late update of an earlier chunk count does not go back.
      await r.updateRecordingProgress(a, { bytes: 100, chunks: 1, digest: 'old', durationMs: 10 });
      await r.updateRecordingProgress(a, { bytes: 600, chunks: 4, digest: 'cd', durationMs: 5000, endedAt: 7000 });
      assert.deepEqual(await r.getRecording(a), rec(a, 1000, { bytes: 600, chunks: 4, digest: 'cd', durationMs: 5000, endedAt: 7000 }));
      assert.equal((await r.getRecording(b))?.keystrokes, true);
      assert.equal(await r.getRecording(randomUUID()), null);
      assert.deepEqual((await r.listRecordings({ projectId })).map((x) => x.id), [b, a]);
      assert.deepEqual((await r.listRecordings({ projectId, oldestFirst: true, limit: 1 })).map((x) => x.id), [a]);
      assert.deepEqual((await r.listRecordings({ serverId: 'srv-2' })).map((x) => x.id), [b]);
      assert.deepEqual((await r.listRecordings({ sessionId: `sess-${a}` })).map((x) => x.id), [a]);
      assert.deepEqual((await r.listRecordings({ projectId, expiredBefore: 1101 })).map((x) => x.id), [a]);
      assert.deepEqual((await r.recordingBytesByProject()).find((x) => x.projectId === projectId), { projectId, bytes: 600 });
      assert.equal(await r.deleteRecording(a), true);
      assert.equal(await r.deleteRecording(a), false);
      assert.deepEqual((await r.listRecordings({ projectId })).map((x) => x.id), [b]);
    });

    test('operator plane: bulk sync in one transaction (rows, revocations, change feed with actor), dry run, all or nothing', async () => {
      const { projectId } = await seedProject(s, 81);
      const { projectId: otherProject } = await seedProject(s, 82);
      const keep = server(projectId, { availabilityZone: 'z1', name: 'keep' });
      const stop = server(projectId, { availabilityZone: 'z1', name: 'stop' });
      const gone = server(projectId, { availabilityZone: 'z1', name: 'gone' });
      const otherZone = server(projectId, { availabilityZone: 'z2', name: 'z2' });
      const foreign = server(otherProject, { availabilityZone: 'z1' });
      for (const x of [keep, stop, gone, otherZone, foreign]) await s.servers.insertServer(x);
      const tok = (srv: Server, n: number) => ({
        hash: `sync${n}`.padEnd(64, '0'), serverId: srv.id, projectId, consoleRevision: 1, issuedAt: 1, expiresAt: 10_000_000_000_000,
        consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null, issuedBy: 'ak:AKSYNC', issuedByUser: 'u1',
      });
      await s.consoleTokens.insertConsoleToken(tok(keep, 1));
      await s.consoleTokens.insertConsoleToken(tok(stop, 2));
      await s.consoleTokens.insertConsoleToken(tok(gone, 3));
      const fresh = server(projectId, { availabilityZone: 'z1', name: 'fresh', createdAt: 50, updatedAt: 50 });
      const seen: string[][] = [];
      const plan = (current: Server[]) => {
        seen.push(current.map((c) => c.id).sort());
        const st = current.find((c) => c.id === stop.id)!;
        return {
          create: [fresh],
          update: [{ before: st, after: { ...st, status: 'SHUTOFF' as const, updatedAt: 60 } }],
          delete: current.filter((c) => c.id === gone.id),
          ended: [{ serverId: stop.id, reason: 'server-stopped' as const }, { serverId: gone.id, reason: 'server-deleted' as const }],
        };
      };
      const lastChange = await s.changes.latestChangeId();
      const dry = await s.servers.syncServers({ projectId, availabilityZone: 'z1' }, plan, { now: 70, apply: false, actor: 'ak:X' });
      assert.equal(dry.create.length, 1);
      assert.deepEqual(seen[0], [keep.id, stop.id, gone.id].sort(), 'the scope: the project\'s servers of the zone');
      assert.equal(await s.servers.getServer(fresh.id), null, 'a dry run writes nothing');
      assert.equal(await s.changes.latestChangeId(), lastChange);
      await s.servers.syncServers({ projectId, availabilityZone: 'z1' }, plan, { now: 70, apply: true, actor: 'ak:X' });
      assert.equal((await s.servers.getServer(fresh.id))?.name, 'fresh');
      assert.equal((await s.servers.getServer(stop.id))?.status, 'SHUTOFF');
      assert.equal(await s.servers.getServer(gone.id), null);
      assert.ok(await s.servers.getServer(otherZone.id));
      assert.equal((await s.consoleTokens.getConsoleToken(tok(stop, 2).hash))?.revokedReason, 'server-stopped');
      assert.equal((await s.consoleTokens.getConsoleToken(tok(gone, 3).hash))?.revokedReason, 'server-deleted');
      assert.equal((await s.consoleTokens.getConsoleToken(tok(keep, 1).hash))?.revokedAt, null);
      const changes = await s.changes.changesSince(lastChange, 100);
      assert.deepEqual(changes.map((c) => [c.kind, c.serverId, c.actor, c.at]), [['server-stopped', stop.id, 'ak:X', 70], ['server-deleted', gone.id, 'ak:X', 70]]);
      // An id taken outside the scope: nothing of the sync is applied.
      const clash = (current: Server[]) => ({
        create: [{ ...foreign, projectId }], update: [], delete: current.filter((c) => c.id === keep.id), ended: [{ serverId: keep.id, reason: 'server-deleted' as const }],
      });
      await assert.rejects(s.servers.syncServers({ projectId }, clash, { now: 80, apply: true, actor: null }), ConflictError);
      assert.ok(await s.servers.getServer(keep.id), 'rolled back');
      assert.equal((await s.consoleTokens.getConsoleToken(tok(keep, 1).hash))?.revokedAt, null);
      // Listing: zone filter and marker paging.
      const z1 = await s.servers.listServers({ projectId, availabilityZone: 'z1' });
      assert.deepEqual(z1.map((x) => x.id), [keep, stop, fresh].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1)).map((x) => x.id));
      assert.deepEqual((await s.servers.listServers({ projectIds: [otherProject] })).map((x) => x.id), [foreign.id]);
      const page2 = await s.servers.listServers({ projectId, availabilityZone: 'z1', afterId: z1[0]!.id, limit: 1 });
      assert.deepEqual(page2.map((x) => x.id), [z1[1]!.id]);
    });

    test('operator plane: audit search filters, newest first with a marker, retention purge', async () => {
      const base = { nodeId: 'n1', tokenRef: null, sessionId: null, detail: {} };
      const mk = (at: number, over: Record<string, unknown>) => s.audit.appendAudit({ ...base, at, kind: 'connected', projectId: 'pa', serverId: 'sa', ...over } as never);
      await mk(1_000, { actorUserId: 'ua', actorCredential: 'ak:AKA', clientAddress: '10.0.0.1', outcome: 'ok' });
      await mk(2_000, { actorUserId: 'ub', actorCredential: 'user:ub', clientAddress: '10.0.0.2', outcome: 'ok', serverId: 'sb' });
      await mk(3_000, { kind: 'rejected', actorUserId: 'ua', actorCredential: 'ak:AKA', clientAddress: '10.0.0.1', outcome: 'refused' });
      // A domain's record without a project (a user's lifecycle), and another domain's.
      await mk(3_500, { kind: 'user-created', projectId: null, serverId: null, domainId: 'da', target: 'user:x' });
      await mk(3_600, { kind: 'user-created', projectId: null, serverId: null, domainId: 'db', target: 'user:y' });
      await mk(4_000, { kind: 'operator', projectId: 'pb', actorCredential: 'cli:root', outcome: 'ok' });
      const q = async (f: Record<string, unknown>) => (await s.audit.listAudit({ order: 'desc', limit: 100, ...f })).filter((e) => e.at <= 4_000).map((e) => e.at);
      assert.deepEqual(await q({ projectId: 'pa' }), [3_000, 2_000, 1_000]);
      assert.deepEqual(await q({ serverId: 'sa', kind: 'connected' }), [1_000]);
      assert.deepEqual(await q({ actorUserId: 'ua' }), [3_000, 1_000]);
      assert.deepEqual(await q({ actorCredential: 'ak:AKA', outcome: 'refused' }), [3_000]);
      assert.deepEqual(await q({ clientAddress: '10.0.0.2' }), [2_000]);
      assert.deepEqual(await q({ projectIds: ['pb', 'nope'] }), [4_000]);
      assert.deepEqual(await q({ projectIds: [] }), []);
      assert.deepEqual(await q({ projectIds: ['pb'], domainId: 'da' }), [4_000, 3_500], 'a domain: its projects\' records and its own');
      assert.deepEqual(await q({ projectIds: [], domainId: 'db' }), [3_600]);
      assert.deepEqual(await q({ domainId: 'da', kind: 'user-created' }), [3_500]);
      assert.equal((await s.audit.listAudit({ domainId: 'da', limit: 1 }))[0]!.domainId, 'da');
      assert.deepEqual(await q({ from: 2_000, to: 4_000 }), [3_600, 3_500, 3_000, 2_000]);
      const all = await s.audit.listAudit({ order: 'desc', limit: 100, to: 4_001 });
      const page = await s.audit.listAudit({ order: 'desc', limit: 2, to: 4_001, beforeId: all[1]!.id! });
      assert.deepEqual(page.map((e) => e.at), [all[2]!.at, all[3]!.at]);
      assert.equal(all[0]!.outcome, 'ok');
      const older = (await s.audit.listAudit({ to: 2_500, limit: 10_000 })).length;
      assert.ok(older >= 2);
      assert.equal(await s.audit.purgeAudit(2_500), older);
      assert.deepEqual(await q({ projectId: 'pa' }), [3_000]);
    });

    test('operator plane: session rows keep who holds them and their traffic', async () => {
      const owner = { nodeId: 'traffic-node', instanceId: 'i1' };
      const row = {
        id: randomUUID(), ...owner, serverId: randomUUID(), projectId: 'p', tokenRef: 'abcd0123', clientAddress: '10.1.1.1', startedAt: 5, heartbeatAt: 5,
        userId: 'u9', credential: 'user:u9',
      };
      await s.sessions.insertSession(row);
      assert.equal(await s.sessions.touchSessions(owner, 9, [{ id: row.id, bytesToClient: 1234, bytesToBackend: 56 }]), 1);
      const got = await s.sessions.getSession(row.id);
      assert.deepEqual({ ...got }, { ...row, heartbeatAt: 9, bytesToClient: 1234, bytesToBackend: 56 });
      await s.sessions.syncSessions(owner, [{ ...row, bytesToClient: 2000, bytesToBackend: 60 }], 10, false);
      assert.equal((await s.sessions.getSession(row.id))?.bytesToClient, 2000);
      const ch = await s.changes.appendChange({ at: 11, kind: 'session-kill', serverId: row.serverId, sessionId: row.id, actor: 'cli:root', reason: 'Maintenance' });
      const [c] = await s.changes.changesSince(ch - 1, 1);
      assert.deepEqual([c?.actor, c?.reason], ['cli:root', 'Maintenance']);
      await s.sessions.deleteSession(row.id);
    });

    test('readiness probe answers while the store can be written', async () => {
      await s.ping();
    });
  });
}
