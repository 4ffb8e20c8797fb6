import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { listServers, remoteConsole, sdkClient, sdkFailure, showServer } from '../../helpers/huawei-sdk.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;

before(async () => {
  stack = await startStack();
  s = await seed(stack.app);
});
after(() => stack.stop());

const URL_RE = /^http:\/\/127\.0\.0\.1:(\d+)\/vnc_auto\.html\?token=([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})&lang=EN&tLength=70$/;

test('SDK gets a console URL of Huawei\'s shape', async () => {
  const client = sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
  const resp = await remoteConsole(client, s.active.id);
  assert.equal(resp.remote_console.type, 'novnc');
  assert.equal(resp.remote_console.protocol, 'vnc');
  const m = URL_RE.exec(resp.remote_console.url);
  assert.ok(m, resp.remote_console.url);
  assert.equal(`http://127.0.0.1:${m[1]}`, stack.proxyUrl);
  // Each call issues a fresh token.
  const again = await remoteConsole(client, s.active.id);
  assert.notEqual(again.remote_console.url, resp.remote_console.url);
});

test('SDK errors: unknown and foreign server 404 Ecs.0114', async () => {
  const client = sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
  for (const id of ['00000000-0000-4000-8000-000000000000', s.foreign.id]) {
    const e = await sdkFailure(remoteConsole(client, id));
    assert.equal(e.httpStatusCode, 404);
    assert.equal(e.errorCode, 'Ecs.0114');
    assert.match(e.requestId, /^[0-9a-f]{32}$/);
  }
});

test('SDK errors: SHUTOFF 400 Ecs.0100', async () => {
  const e = await sdkFailure(remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.shutoff.id));
  assert.equal(e.httpStatusCode, 400);
  assert.equal(e.errorCode, 'Ecs.0100');
});

test('SDK errors: wrong SK 401 APIGW.0301', async () => {
  const e = await sdkFailure(remoteConsole(sdkClient(stack.apiUrl, s.ak, 'x'.repeat(40), s.projectId), s.active.id));
  assert.equal(e.httpStatusCode, 401);
  assert.equal(e.errorCode, 'APIGW.0301');
});

test('SDK errors: key of another project 400 Common.0018', async () => {
  const e = await sdkFailure(remoteConsole(sdkClient(stack.apiUrl, s.otherAk, s.otherSk, s.projectId), s.active.id));
  assert.equal(e.httpStatusCode, 400);
  assert.equal(e.errorCode, 'Common.0018');
});

test('SDK errors: key without the action 403 Pdp.0001', async () => {
  const e = await sdkFailure(remoteConsole(sdkClient(stack.apiUrl, s.limitedAk, s.limitedSk, s.projectId), s.active.id));
  assert.equal(e.httpStatusCode, 403);
  assert.equal(e.errorCode, 'Pdp.0001');
  assert.match(e.errorMsg, /ecs:cloudServers:vnc/);
});

test('SDK ShowServer and ListServersDetails', async () => {
  const client = sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
  const shown = await showServer(client, s.active.id);
  assert.equal(shown.server.id, s.active.id);
  assert.equal(shown.server.name, 'web-01');
  assert.equal(shown.server.status, 'ACTIVE');
  assert.equal(shown.server.tenant_id, s.projectId);
  assert.equal(shown.server['OS-EXT-AZ:availability_zone'], 'az1');
  assert.match(shown.server.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(shown.server.updated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const list = await listServers(client);
  assert.equal(list.count, 2);
  assert.deepEqual(list.servers.map((x: { name: string }) => x.name).sort(), ['db-01', 'web-01']);
  const page2 = await listServers(client, 1, 2);
  assert.equal(page2.count, 2);
  assert.equal(page2.servers.length, 1);
  const e = await sdkFailure(showServer(client, s.foreign.id));
  assert.equal(e.httpStatusCode, 404);
  assert.equal(e.errorCode, 'Ecs.0114');
});
