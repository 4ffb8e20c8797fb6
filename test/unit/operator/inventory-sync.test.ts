/**
 * Partial updates and bulk sync of the inventory: a password-only change leaves live sessions
 * alone, a new place ends them; a sync creates, updates, deletes and revokes in one transaction,
 * changes nothing when run again, and a dry run only plans.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DemoVncServer } from '../../../src/demo/index.js';
import type { ServerSyncItem } from '../../../src/inventory/inventory-service.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { runCli } from '../../helpers/cli.js';
import { openConsole } from '../../helpers/console-client.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let port = 0;
let stack: Stack;
let s: Seed;
before(async () => {
  vnc = new DemoVncServer({ name: 'sync', width: 160, height: 100, password: 'first-pw' });
  ({ port } = await vnc.listen(0, '127.0.0.1'));
  stack = await startStack();
  s = await seed(stack.app, { host: '127.0.0.1', port, auth: 'vnc-password', password: 'first-pw' });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

const ctx = { actor: { userId: null, credential: 'cli:test' }, door: 'cli' as const };

async function url(id: string): Promise<string> {
  const { token } = await stack.app.services.consoleTokens.issue(await stack.app.services.inventory.getServer(id));
  return `${stack.proxyUrl}/vnc_auto.html?token=${token}`;
}

test('a password-only change leaves the live session and issued URLs alone; a host change ends them', async () => {
  const inv = stack.app.services.inventory;
  const c = await openConsole(await url(s.active.id));
  const pending = await url(s.active.id);
  let closed = false;
  void c.closed.then(() => (closed = true));
  vnc.setPassword('second');
  const after1 = await inv.updateServer(s.active.id, { console: { password: 'second' } }, ctx);
  assert.equal(after1.consoleRevision, s.active.consoleRevision, 'the revision is kept');
  assert.equal(after1.console.kind === 'static' && after1.console.host, '127.0.0.1', 'the host stays');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(closed, false, 'the live session goes on');
  // The URL issued before still works, with the new password.
  const d = await openConsole(pending);
  d.ws.close();
  // The same password again: nothing changes.
  const same = await inv.updateServer(s.active.id, { console: { password: 'second' } }, ctx);
  assert.equal(same.updatedAt, after1.updatedAt);
  // A new place: the session ends.
  const moved = await inv.updateServer(s.active.id, { console: { host: 'localhost' } }, ctx);
  assert.equal(moved.consoleRevision, after1.consoleRevision + 1);
  assert.equal((await c.closed).code, CloseCode.Revoked);
  const kept = moved.console.kind === 'static' ? moved.console : null;
  assert.equal(kept?.port, port, 'the port stays');
  assert.equal(kept?.auth, 'vnc-password');
  assert.equal(stack.app.services.inventory.resolveTarget(moved).password, 'second', 'the password stays');
});

test('CLI: set-console with only a password needs no host or port; server update is partial; list and show JSON name fields alike', async () => {
  const env = { ECS_CONSOLE_DATA_DIR: stack.dataDir };
  const r = await runCli(['server', 'set-console', s.shutoff.id, '--password-stdin', '--json'], env, 'newpass\n');
  assert.equal(r.code, 0, r.stderr);
  const shown = JSON.parse(r.stdout);
  assert.equal(shown.consoleHost, '127.0.0.1');
  assert.equal(shown.consoleAuth, 'vnc-password');
  assert.equal(shown.consoleRevision, 1, 'a password alone keeps the revision');
  const st = await runCli(['server', 'update', s.shutoff.id, '--status', 'ACTIVE', '--name', 'db-02', '--json'], env);
  assert.equal(st.code, 0, st.stderr);
  assert.equal(JSON.parse(st.stdout).name, 'db-02');
  assert.equal(JSON.parse(st.stdout).status, 'ACTIVE');
  const none = await runCli(['server', 'update', s.shutoff.id], env);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /nothing to change/);
  const list = JSON.parse((await runCli(['server', 'list', '--project', s.projectId, '--json'], env)).stdout) as Array<Record<string, unknown>>;
  const show = JSON.parse((await runCli(['server', 'show', s.shutoff.id, '--json'], env)).stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(list.find((x) => x['id'] === s.shutoff.id)!).sort(), Object.keys(show).sort());
  const kill = await runCli(['sessions', 'kill'], env);
  assert.notEqual(kill.code, 0);
  assert.match(kill.stderr, /give a session id \(see `ecs-console sessions list`\) or --server/);
  assert.doesNotMatch(kill.stderr, /not found/);
});

function item(id: string, n: number, over: Partial<ServerSyncItem> = {}): ServerSyncItem {
  return { id, name: `vm-${n}`, availabilityZone: 'az2', console: { host: '127.0.0.1', port: 5900 + (n % 100) }, ...over };
}

test('bulk sync: create, update, delete, revoke in one go; idempotent; dry run plans only; a bad item changes nothing', async () => {
  const inv = stack.app.services.inventory;
  const scope = { projectId: s.projectId, availabilityZone: 'az2' };
  const ids: string[] = Array.from({ length: 50 }, () => randomUUID());
  const first = await inv.syncServers(scope, ids.map((id, n) => item(id, n)), {}, ctx);
  assert.equal(first.created.length, 50);
  assert.equal(first.revoked.length, 0);
  const again = await inv.syncServers(scope, ids.map((id, n) => item(id, n)), {}, ctx);
  assert.deepEqual([again.created.length, again.updated.length, again.deleted.length, again.revoked.length, again.unchanged], [0, 0, 0, 0, 50]);
  // The servers outside the zone are not the sync's.
  assert.ok(await inv.findServer(s.foreign.id));
  assert.ok(await inv.findServer(s.active.id));

  const tokenOf = async (id: string): Promise<string> => (await stack.app.services.consoleTokens.issue(await inv.getServer(id))).token;
  const tokens = await Promise.all([0, 1, 2, 3].map((i) => tokenOf(ids[i]!)));
  const next = ids.slice(0, 49).map((id, n) => item(id, n));
  next[0] = item(ids[0]!, 0, { console: { host: '127.0.0.1', port: 6999 } });
  next[1] = item(ids[1]!, 1, { status: 'SHUTOFF' });
  next[2] = item(ids[2]!, 2, { name: 'renamed' });
  next[3] = item(ids[3]!, 3, { console: { host: '127.0.0.1', port: 5903, password: 'pw3' } });
  const fresh = randomUUID();
  next.push(item(fresh, 99));

  const plan = await inv.syncServers(scope, next, { dryRun: true }, ctx);
  assert.equal(plan.dryRun, true);
  assert.deepEqual(plan.created, [fresh]);
  assert.deepEqual(plan.deleted, [ids[49]]);
  assert.equal((await inv.findServer(fresh)), null, 'a dry run changes nothing');
  assert.ok(await inv.findServer(ids[49]!));

  const done = await inv.syncServers(scope, next, {}, ctx);
  assert.deepEqual(done.created, plan.created);
  assert.deepEqual(done.updated, plan.updated);
  assert.deepEqual(new Map(done.updated.map((u) => [u.id, u.changed])), new Map([
    [ids[0], ['console']], [ids[1], ['status']], [ids[2], ['name']], [ids[3], ['console.password']],
  ]));
  assert.deepEqual(done.revoked.map((r) => [r.id, r.reason]).sort(), [[ids[0], 'console-changed'], [ids[1], 'server-stopped'], [ids[49], 'server-deleted']].sort());
  const states = await Promise.all(tokens.map((t) => stack.app.services.consoleTokens.peek(t)));
  assert.deepEqual(states.map((x) => x.state), ['revoked', 'revoked', 'valid', 'valid'], 'a rename or a new password revokes nothing');
  const changes = await stack.app.services.stores.changes.changesSince(0, 10_000);
  const mine = changes.filter((c) => [ids[0], ids[1], ids[49]].includes(c.serverId!));
  assert.equal(mine.length, 3);
  assert.ok(mine.every((c) => c.actor === 'cli:test'));

  const bad = [...next, item(randomUUID(), 5, { console: { host: 'no such host!', port: 1 } })];
  await assert.rejects(inv.syncServers(scope, bad, {}, ctx), /servers\[50\]\.host: console host/);
  const dup = [...next, next[0]!];
  await assert.rejects(inv.syncServers(scope, dup, {}, ctx), /listed twice/);
  // An id that exists outside the scope: the whole sync is refused, nothing applied.
  const clash = [...next.slice(1), item(s.foreign.id as string, 7)];
  await assert.rejects(inv.syncServers(scope, clash, {}, ctx), (e: Error & { code?: string }) => e.code === 'CONFLICT');
  assert.ok(await inv.findServer(ids[0]!), 'nothing deleted');
  const audit = await stack.app.services.audit.search({ kind: 'operator', credential: 'cli:test' });
  assert.ok(audit.events.some((e) => e.detail['action'] === 'servers-sync' && e.detail['created'] === 1 && e.detail['deleted'] === 1));
  assert.ok(audit.events.some((e) => e.detail['action'] === 'servers-sync-plan'));
});

test('CLI server sync --file [--dry-run]', async () => {
  const env = { ECS_CONSOLE_DATA_DIR: stack.dataDir };
  const file = join(stack.dataDir, 'sync.json');
  const id = randomUUID();
  writeFileSync(file, JSON.stringify({ project_id: s.projectId, availability_zone: 'az3', servers: [{ id, name: 'from-file', console: { host: '10.0.0.1', port: 5901, tls_name: 'vnc.example' } }] }));
  const dry = await runCli(['server', 'sync', '--file', file, '--dry-run'], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /plan \(dry run, nothing changed\): would create 1/);
  assert.equal(await stack.app.services.inventory.findServer(id), null);
  const run = await runCli(['server', 'sync', '--file', file, '--json'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout).created, [id]);
  const srv = await stack.app.services.inventory.getServer(id);
  assert.equal(srv.console.tls?.serverName, 'vnc.example');
  writeFileSync(file, '{"project_id": 5}');
  const bad = await runCli(['server', 'sync', '--file', file], env);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /project_id is required/);
});
