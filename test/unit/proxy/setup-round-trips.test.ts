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
