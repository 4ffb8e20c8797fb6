/**
 * Links issued before a server was stopped, deleted or given another console: the proxy answers
 * what happened (409 `server-not-active` with the reason, at the upgrade and in the page's
 * pre-check) and does not count them against the address's failed-token throttle.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchStartServersOption, BatchStartServersRequest, BatchStartServersRequestBody, BatchStopServersOption, BatchStopServersRequest, BatchStopServersRequestBody, ServerId } from '@huaweicloud/huaweicloud-sdk-ecs';
import { DemoVncServer } from '../../../src/demo/index.js';
import { openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let port = 0;
let stack: Stack;
let s: Seed;
const LIMIT = 3;

before(async () => {
  vnc = new DemoVncServer({ name: 'revoked', width: 160, height: 100 });
  ({ port } = await vnc.listen(0, '127.0.0.1'));
  stack = await startStack({ options: { proxyFailedTokenLimitPerMinute: String(LIMIT) } });
  s = await seed(stack.app, { host: '127.0.0.1', port });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

const client = () => sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
const url = async (serverId: string): Promise<string> => (await remoteConsole(client(), serverId)).remote_console.url;
const precheck = async (u: string): Promise<unknown> =>
  (await http('POST', `${stack.proxyUrl}/api/console/info`, { 'content-type': 'application/json' }, JSON.stringify({ token: new URL(u).searchParams.get('token') }))).json;

test('os-stop, a console move and a removal: an issued link answers 409 with what happened, in the pre-check too, never counted as a guess', async () => {
  const stopped = await url(s.active.id);
  await client().batchStopServers(new BatchStopServersRequest().withBody(new BatchStopServersRequestBody().withOsStop(
    new BatchStopServersOption().withServers([new ServerId(s.active.id)]).withType('SOFT'))));
  // Presented twice the throttle's budget: each answer says what happened, none is a 429.
  for (let i = 0; i < 2 * LIMIT + 1; i++) {
    const r = await openWs(wsUrlOf(stopped));
    assert.ok(!r.ok && r.status === 409 && /server was stopped; start it/.test(r.body), JSON.stringify(r));
  }
  assert.deepEqual(await precheck(stopped), { state: 'server-not-active', reason: 'server-stopped' });

  await client().batchStartServers(new BatchStartServersRequest().withBody(new BatchStartServersRequestBody().withOsStart(
    new BatchStartServersOption().withServers([new ServerId(s.active.id)]))));
  const r = await openWs(wsUrlOf(stopped));
  assert.ok(!r.ok && r.status === 409, 'starting the server again does not bring the old link back');
  // The same address was never throttled: a fresh link opens.
  const fresh = await openConsole(await url(s.active.id));
  fresh.ws.close();

  const moved = await url(s.active.id);
  await stack.app.services.inventory.setConsole(s.active.id, { host: '127.0.0.1', port, auth: 'none' });
  const m = await openWs(wsUrlOf(moved));
  assert.ok(!m.ok && m.status === 409 && /console was moved/.test(m.body), JSON.stringify(m));
  assert.deepEqual(await precheck(moved), { state: 'server-not-active', reason: 'console-changed' });

  const other = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'gone-soon', console: { host: '127.0.0.1', port, auth: 'none' } });
  const deleted = await url(other.id);
  await stack.app.services.inventory.removeServer(other.id);
  const d = await openWs(wsUrlOf(deleted));
  assert.ok(!d.ok && d.status === 409 && /was deleted/.test(d.body), JSON.stringify(d));
  assert.deepEqual(await precheck(deleted), { state: 'server-not-active', reason: 'server-deleted' });

  // The audit trail says why each was refused.
  const rejected = await stack.app.services.stores.audit.listAudit({ kind: 'rejected' });
  const why = new Set(rejected.map((e) => `${String(e.detail['reason'])}:${String(e.detail['revoked'])}`));
  for (const reason of ['server-stopped', 'console-changed', 'server-deleted']) assert.ok(why.has(`server-not-active:${reason}`), [...why].join(' '));

  // Unknown tokens still count: the budget ends in a 429.
  const statuses: number[] = [];
  for (let i = 0; i <= LIMIT; i++) {
    const u = await openWs(wsUrlOf(`${stack.proxyUrl}/vnc_auto.html`, '00000000-0000-4000-8000-00000000000' + i));
    statuses.push(u.ok ? 101 : u.status);
  }
  assert.deepEqual(statuses, [...Array(LIMIT).fill(401), 429]);
});
