/**
 * A console session's setup with the node's caches warm: the server comes from the cache before
 * the token is consumed, and the re-check at connect time (CVE-2013-0335) is the store's own read
 * in the consumption's transaction, not a round trip of its own. A server stopped behind the
 * cache's back is still refused; a change applied while a session is being set up still ends it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import type { ConsumeResult } from '../../../src/tokens/types.js';
import { StoreUnavailableError } from '../../../src/errors.js';
import { closeOf, openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let stack: Stack;
let s: Seed;
let vncPort = 0;

before(async () => {
  vnc = new DemoVncServer({ name: 'setup', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  vncPort = port;
  // The longest lag the caches allow: a slow machine does not make them untrusted mid-test.
  stack = await startStack({ options: { cacheFeedLagMs: '60000' } });
  s = await seed(stack.app, { host: '127.0.0.1', port });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

const url = async (serverId: string): Promise<string> => (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), serverId)).remote_console.url;

/** Counts the store's server reads while `fn` runs. */
async function serverReads(fn: () => Promise<void>): Promise<number> {
  const servers = stack.app.services.stores.servers;
  const read = servers.getServer;
  let n = 0;
  servers.getServer = (id) => (n++, read.call(servers, id));
  try {
    await fn();
  } finally {
    servers.getServer = read;
  }
  return n;
}

test('with the cache warm, a session reads no server of its own: the cached one before the consumption, the store\'s in the consumption', async () => {
  const u = await url(s.active.id);
  const inv = stack.app.services.inventory;
  const hits = inv.cacheStats().hits;
  const reads = await serverReads(async () => {
    const c = await openConsole(u);
    c.ws.close();
    await c.closed;
  });
  assert.equal(reads, 0, 'no read of the server apart from the consumption');
  assert.equal(inv.cacheStats().hits, hits + 1, 'the server came from the node cache');
});

test('a server stopped behind the cache\'s back is refused at the consumption, though this node\'s cache still holds it ACTIVE', async () => {
  const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'stopped-quietly', console: { host: '127.0.0.1', port: 1, auth: 'none' } });
  const u = await url(srv.id);
  // Written to the store alone: no change on the feed, no token revoked (another node's stop, not read yet).
  await stack.app.services.stores.servers.updateServer(srv.id, { status: 'SHUTOFF' }, Date.now());
  assert.equal((await stack.app.services.inventory.findServerForConsole(srv.id))?.status, 'ACTIVE', 'the cache still says ACTIVE');
  const r = await openWs(wsUrlOf(u));
  assert.ok(!r.ok && r.status === 409 && /not running/.test(r.body), JSON.stringify(r.ok ? 'accepted' : r));
});

test('a change applied while a session is being set up (after its consumption, before it is registered) still ends it', async () => {
  const u = await url(s.active.id);
  const tokens = stack.app.services.stores.consoleTokens;
  const consume = tokens.consumeConsoleToken;
  // The stop is read from the feed while the consumption's answer is on its way back.
  tokens.consumeConsoleToken = async (hash, now, node): Promise<ConsumeResult> => {
    const r = await consume.call(tokens, hash, now, node);
    stack.app.proxy!.applyChange({ kind: 'server-stopped', serverId: s.active.id, sessionId: null, at: Date.now(), credential: null });
    return r;
  };
  try {
    const r = await openWs(wsUrlOf(u));
    assert.ok(r.ok, 'accepted: the store said ACTIVE at the consumption');
    const closed = await closeOf(r.ws);
    assert.equal(closed.code, CloseCode.Revoked);
    assert.match(closed.reason, /stopped/);
  } finally {
    tokens.consumeConsoleToken = consume;
  }
});

test('a cached server whose VNC password does not open is read again from the store: repaired behind the feed\'s back, the link works at the next attempt', async () => {
  const srv = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'bad-seal', console: { host: '127.0.0.1', port: vncPort, auth: 'none' } });
  const raw = stack.app.services.stores.servers;
  const sealed = (passwordSealed: string | null): Promise<unknown> => raw.updateServer(srv.id, { console: { ...srv.console, passwordSealed } as typeof srv.console, keepConsoleRevision: true }, Date.now());
  await sealed('v1:not-sealed-with-our-key');
  // Issuing fills this node's cache with the row whose password does not open.
  const u = await url(srv.id);
  const r = await openWs(wsUrlOf(u));
  assert.ok(!r.ok && r.status === 503, JSON.stringify(r.ok ? 'accepted' : r));
  await sealed(null);
  const c = await openConsole(u);
  c.ws.close();
  await c.closed;
});

/** Holds every consumption until let go, in the order they came. */
function gateConsumptions(): { waiting: () => number; letGo: () => void; restore: () => void } {
  const tokens = stack.app.services.stores.consoleTokens;
  const consume = tokens.consumeConsoleToken;
  const held: Array<() => void> = [];
  tokens.consumeConsoleToken = async (hash, now, node): Promise<ConsumeResult> => {
    await new Promise<void>((r) => held.push(r));
    return consume.call(tokens, hash, now, node);
  };
  return {
    waiting: () => held.length,
    letGo: () => held.shift()!(),
    // Lets go of what is still held (a failed assertion leaves setups waiting), then stops holding.
    restore: () => {
      tokens.consumeConsoleToken = consume;
      for (const r of held.splice(0)) r();
    },
  };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), what);
}

test('changes held for setups in flight stay bounded under overlapping setups, and still reach a session registered mid-setup', async () => {
  const proxy = stack.app.proxy!;
  const gate = gateConsumptions();
  const other = { kind: 'server-stopped' as const, serverId: 'no-such-server', sessionId: null, credential: null };
  const doomed = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'stopped-mid-setup', console: { host: '127.0.0.1', port: vncPort, auth: 'none' } });
  try {
    // Always one setup in flight (the next starts before the last ends), and a change during each.
    let previous = openWs(wsUrlOf(await url(s.active.id)));
    await until('first setup held', () => gate.waiting() === 1);
    const opened: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) {
      proxy.applyChange({ ...other, at: Date.now() });
      const next = openWs(wsUrlOf(await url(s.active.id)));
      await until('next setup held', () => gate.waiting() === 2);
      gate.letGo();
      const r = await previous;
      assert.ok(r.ok, 'accepted');
      opened.push(r.ok ? (r.ws.close(), closeOf(r.ws)) : Promise.resolve());
      previous = next;
      // Only what the setup still in flight may have to replay: the changes since it started.
      assert.ok(proxy.heldChanges <= 1, `held ${proxy.heldChanges} changes after ${i + 1} overlapping setups`);
    }
    // A stop applied while two setups are in flight reaches the one of its server, registered after it.
    const doomedSetup = openWs(wsUrlOf(await url(doomed.id)));
    await until('doomed setup held', () => gate.waiting() === 2);
    proxy.applyChange({ kind: 'server-stopped', serverId: doomed.id, sessionId: null, at: Date.now(), credential: null });
    gate.letGo();
    const r = await previous;
    assert.ok(r.ok);
    if (r.ok) opened.push((r.ws.close(), closeOf(r.ws)));
    gate.letGo();
    const d = await doomedSetup;
    assert.ok(d.ok, 'accepted: the store said ACTIVE at the consumption');
    if (d.ok) {
      const closed = await closeOf(d.ws);
      assert.equal(closed.code, CloseCode.Revoked);
    }
    await Promise.all(opened);
    assert.equal(proxy.heldChanges, 0, 'nothing held with no setup in flight');
  } finally {
    gate.restore();
  }
});

test('a token consumed by a setup that fails for a reason of ours is given back (again each second while the store refuses), and the link then works', async () => {
  const u = await url(s.active.id);
  const tokens = stack.app.services.stores.consoleTokens;
  const servers = stack.app.services.stores.servers;
  const consume = tokens.consumeConsoleToken;
  const release = tokens.releaseConsoleToken;
  const read = servers.getServer;
  let releases = 0;
  // The consumption saw the server differ from the cached one (another console revision), and the
  // store fails the read that follows it: the setup fails after the token was spent.
  tokens.consumeConsoleToken = async (hash, now, node): Promise<ConsumeResult> => {
    const r = await consume.call(tokens, hash, now, node);
    return r.ok && r.server ? { ...r, server: { ...r.server, consoleRevision: r.server.consoleRevision + 1 } } : r;
  };
  servers.getServer = async () => {
    throw new StoreUnavailableError('store down for the test');
  };
  // The first give-back fails too: it is tried again at the next sweep.
  tokens.releaseConsoleToken = async (hash, at, node): Promise<boolean> => {
    if (releases++ === 0) throw new StoreUnavailableError('store still down for the test');
    return release.call(tokens, hash, at, node);
  };
  try {
    const r = await openWs(wsUrlOf(u));
    assert.ok(!r.ok && r.status === 503, JSON.stringify(r.ok ? 'accepted' : r));
  } finally {
    tokens.consumeConsoleToken = consume;
    servers.getServer = read;
  }
  try {
    const token = new URL(u).searchParams.get('token')!;
    await until('the token given back', () => releases >= 2);
    for (let i = 0; i < 100 && (await stack.app.services.consoleTokens.peek(token)).state !== 'valid'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await stack.app.services.consoleTokens.peek(token)).state, 'valid', 'usable again');
  } finally {
    tokens.releaseConsoleToken = release;
  }
  const c = await openConsole(u);
  c.ws.close();
  await c.closed;
});
