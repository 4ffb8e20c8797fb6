/** BatchStartServers / BatchStopServers: the SDK's calls, all-or-nothing, errors. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BatchStartServersOption, BatchStartServersRequest, BatchStartServersRequestBody, BatchStopServersOption,
  BatchStopServersRequest, BatchStopServersRequestBody, ServerId,
} from '@huaweicloud/huaweicloud-sdk-ecs';
import { sdkClient, sdkFailure } from '../../helpers/huawei-sdk.js';
import { signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
before(async () => {
  stack = await startStack();
  s = await seed(stack.app);
});
after(() => stack.stop());

const stop = (ids: string[]) => new BatchStopServersRequest().withBody(new BatchStopServersRequestBody().withOsStop(new BatchStopServersOption().withServers(ids.map((i) => new ServerId(i))).withType('SOFT')));
const start = (ids: string[]) => new BatchStartServersRequest().withBody(new BatchStartServersRequestBody().withOsStart(new BatchStartServersOption().withServers(ids.map((i) => new ServerId(i)))));

test('the SDK stops and starts servers; stopping revokes console tokens', async () => {
  const client = sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
  const { token } = await stack.app.services.consoleTokens.issue(s.active);
  const r = (await client.batchStopServers(stop([s.active.id]))) as unknown as { job_id: string };
  assert.match(r.job_id, /^[0-9a-f-]{36}$/);
  assert.equal((await stack.app.services.inventory.getServer(s.active.id)).status, 'SHUTOFF');
  assert.equal((await stack.app.services.consoleTokens.peek(token)).state, 'revoked');
  await client.batchStartServers(start([s.active.id, s.shutoff.id]));
  assert.equal((await stack.app.services.inventory.getServer(s.active.id)).status, 'ACTIVE');
  assert.equal((await stack.app.services.inventory.getServer(s.shutoff.id)).status, 'ACTIVE');
  await client.batchStopServers(stop([s.shutoff.id]));
});

test('another project\'s server in the list: 404 Ecs.0114 and nothing changes', async () => {
  const e = await sdkFailure(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId).batchStopServers(stop([s.active.id, s.foreign.id])));
  assert.equal(e.httpStatusCode, 404);
  assert.equal(e.errorCode, 'Ecs.0114');
  assert.equal((await stack.app.services.inventory.getServer(s.active.id)).status, 'ACTIVE');
});

test('a key without ecs:cloudServers:stop gets 403 Pdp.0001', async () => {
  const e = await sdkFailure(sdkClient(stack.apiUrl, s.limitedAk, s.limitedSk, s.projectId).batchStopServers(stop([s.active.id])));
  assert.equal(e.httpStatusCode, 403);
  assert.equal(e.errorCode, 'Pdp.0001');
});

test('bad bodies: 400 Ecs.0005 naming the problem', async () => {
  const url = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/action`;
  for (const [body, msg] of [
    ['{}', /os-start or os-stop/], ['{"reboot":{"servers":[]}}', /os-start or os-stop/],
    ['{"os-stop":{"servers":[]}}', /1 to 1000/], ['{"os-stop":{"servers":"x"}}', /1 to 1000/],
    ['{"os-stop":{"servers":[1]}}', /servers\[0\] must be an object/], ['{"os-stop":{"servers":[{}]}}', /servers\[0\]\.id is required/],
    ['{"os-stop":{"type":"GENTLE","servers":[{"id":"x"}]}}', /SOFT or HARD/], ['{"os-stop":{"servers":[{"id":"x"}]},"os-start":{}}', /os-start or os-stop/],
  ] as const) {
    const r = await signedHttp('POST', url, body, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(r.status, 400, body);
    assert.equal(r.json.error.code, 'Ecs.0005', body);
    assert.match(r.json.error.message, msg, body);
  }
});
