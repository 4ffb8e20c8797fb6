/**
 * Two nodes sharing one PostgreSQL, as a fleet runs: an API node issues the console URL, a proxy
 * node (another app, its own pool) consumes the token and relays the session, and changes made on
 * the API node reach the proxy node through LISTEN/NOTIFY, well before its next poll.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { DemoVncServer } from '../../src/demo/index.js';
import { CloseCode } from '../../src/proxy/close-codes.js';
import type { SessionRecord } from '../../src/sessions/types.js';
import { openConsole, openWs, wsUrlOf } from '../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../helpers/huawei-sdk.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { seed, startStack, tempDir, type Seed, type Stack } from '../helpers/stack.js';

describe('fleet on PostgreSQL: API node and proxy node', () => {
  let db: TestDatabase;
  let dataDir: string;
  let apiNode: Stack;
  let proxyNode: Stack;
  let vnc: DemoVncServer;
  let s: Seed;
  const consoleUrl = async (serverId = s.active.id): Promise<string> =>
    (await remoteConsole(sdkClient(apiNode.apiUrl, s.ak, s.sk, s.projectId), serverId)).remote_console.url;

  before(async () => {
    db = await createTestDatabase();
    vnc = new DemoVncServer({ name: 'fleet-demo', width: 320, height: 200 });
    const { port } = await vnc.listen(0, '127.0.0.1');
    // One data directory: both nodes need the same master key (sealed VNC passwords, secret keys).
    dataDir = tempDir();
    // The proxy polls the feed only every 10 s: anything faster came by NOTIFY.
    proxyNode = await startStack({ role: 'proxy', dataDir, options: { store: db.url, nodeId: 'proxy-1', changePollIntervalMs: 10_000 } });
    apiNode = await startStack({ role: 'api', dataDir, options: { store: db.url, nodeId: 'api-1', publicUrl: proxyNode.proxyUrl } });
    s = await seed(apiNode.app, { host: '127.0.0.1', port });
  });
  after(async () => {
    await proxyNode?.stop();
    await apiNode?.stop();
    await vnc?.close();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a token issued by the API node opens a console on the proxy node, once', async () => {
    const u = await consoleUrl();
    assert.ok(u.startsWith(proxyNode.proxyUrl));
    const c = await openConsole(u);
    assert.equal(c.client.name, 'web-01');
    await c.client.waitUntil(() => c.client.updateCount > 0);
    const again = await openWs(wsUrlOf(u));
    assert.ok(!again.ok && again.status === 401 && /already used/.test(again.body));
    // The session the proxy node recorded is visible from the API node.
    c.ws.close();
    await c.closed;
    // The session the proxy node recorded was seen by the API node (audit: connected on proxy-1).
    const audit = await apiNode.app.services.stores.audit.listAudit({ serverId: s.active.id, kind: 'connected' });
    assert.deepEqual(audit.map((e) => e.nodeId), ['proxy-1']);
  });

  test('a session killed from the API node closes on the proxy node within a second (NOTIFY, not the 10 s poll)', async () => {
    const sessions = apiNode.app.services.stores.sessions;
    const earlier = new Set((await sessions.listSessions({ freshSince: 0 })).map((x) => x.id));
    const c = await openConsole(await consoleUrl());
    // The proxy node records the session in the background once the relay starts.
    let session: SessionRecord | undefined;
    for (const end = Date.now() + 5000; !session && Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
      session = (await sessions.listSessions({ serverId: s.active.id, freshSince: 0 })).find((x) => !earlier.has(x.id));
    }
    assert.ok(session, 'the new session is recorded');
    const t0 = Date.now();
    await apiNode.app.services.stores.changes.appendChange({ at: t0, kind: 'session-kill', serverId: s.active.id, sessionId: session.id });
    const closed = await c.closed;
    const ms = Date.now() - t0;
    console.log(`# session killed on the other node after ${ms} ms`);
    assert.ok(ms < 1000, `${ms} ms`);
    assert.equal(closed.code, CloseCode.Killed);
  });

  test('stopping the server on the API node closes its session on the proxy node within a second', async () => {
    const c = await openConsole(await consoleUrl());
    const t0 = Date.now();
    await apiNode.app.services.inventory.setStatus(s.active.id, 'SHUTOFF');
    const closed = await c.closed;
    assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
    assert.equal(closed.code, CloseCode.Revoked);
    await apiNode.app.services.inventory.setStatus(s.active.id, 'ACTIVE');
  });
});
