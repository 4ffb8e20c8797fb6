/**
 * /readyz means it: 200 only while the store can be written, the master key that seals is a key
 * of the store, and the listener asked takes new work; otherwise 503 naming the failed check.
 * (The drain's 503 before the listeners close: unit/proxy/sigterm-drain and
 * system/installed-package.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { DemoVncServer } from '../../../src/demo/index.js';
import { keyCheckOf } from '../../../src/secrets/key-check.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { openConsole } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack } from '../../helpers/stack.js';

test('readiness: store writable, master key the store\'s, listener taking new consoles; each failure named', async () => {
  const vnc = new DemoVncServer({ name: 'ready', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  const stack = await startStack({ options: { proxyMaxSessions: 1, sqliteBusyTimeoutMs: 200 } });
  const probe = async (base: string): Promise<{ status: number; body: unknown }> => {
    const r = await http('GET', `${base}/readyz`);
    return { status: r.status, body: r.json };
  };
  const both = async (): Promise<Array<{ status: number; body: unknown }>> => [await probe(stack.apiUrl), await probe(stack.proxyUrl)];
  try {
    const s = await seed(stack.app, { host: '127.0.0.1', port });
    const ready = { status: 200, body: { status: 'ready' } };
    assert.deepEqual(await both(), [ready, ready]);

    // The store cannot be written: another connection holds the write lock.
    const other = new Database(stack.config.store.slice('sqlite:'.length));
    other.exec('BEGIN IMMEDIATE');
    try {
      const store = { status: 503, body: { status: 'unavailable', check: 'store' } };
      assert.deepEqual(await both(), [store, store]);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.deepEqual(await both(), [ready, ready]);

    // A rotation elsewhere retired this node's key: the node is taken out until it has the new key.
    const { keyChecks } = stack.app.services.stores;
    const mine = await keyChecks.listKeyChecks();
    await keyChecks.addKeyCheck(keyCheckOf(new SecretBox(Buffer.alloc(32, 9)), 1));
    await keyChecks.removeKeyCheck(stack.app.services.box.keyId);
    const key = { status: 503, body: { status: 'unavailable', check: 'master-key' } };
    assert.deepEqual(await both(), [key, key]);
    assert.match(stack.logs.text, /"level":"warn".*"check":"master-key".*is not a key of the store any more.*"msg":"not ready"/);
    await keyChecks.addKeyCheck(mine[0]!);
    assert.deepEqual(await both(), [ready, ready]);

    // The proxy at its session cap takes no new console: its listener is not ready, the API's is.
    const c = await openConsole((await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url);
    await c.client.waitUntil(() => c.client.updateCount > 0);
    assert.deepEqual(await both(), [ready, { status: 503, body: { status: 'unavailable', check: 'listener' } }]);
    c.ws.close();
    await c.closed;
    for (let i = 0; i < 100 && (await probe(stack.proxyUrl)).status !== 200; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await both(), [ready, ready]);
  } finally {
    await stack.stop();
    await vnc.close();
  }
});
