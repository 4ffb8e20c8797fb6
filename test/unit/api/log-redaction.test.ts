/** A full run's log output holds no token, SK, password, Authorization or X-Auth-Token value. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remoteConsole, sdkClient, sdkFailure } from '../../helpers/huawei-sdk.js';
import { http, signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack } from '../../helpers/stack.js';

test('no secret in any log line of a full run', async () => {
  const stack = await startStack();
  const secrets: string[] = [];
  try {
    const s = await seed(stack.app, { host: '127.0.0.1', port: 5900, auth: 'vnc-password', password: 'vncpw123' });
    secrets.push(s.sk, s.otherSk, s.limitedSk, s.password, 'vncpw123');
    const client = sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId);
    const url = (await remoteConsole(client, s.active.id)).remote_console.url;
    secrets.push(new URL(url).searchParams.get('token')!);
    await sdkFailure(remoteConsole(client, s.shutoff.id));
    await sdkFailure(remoteConsole(sdkClient(stack.apiUrl, s.ak, 'wrong-sk-wrong-sk-wrong-sk-wrong-sk-0000', s.projectId), s.active.id));
    const signedReply = await signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`, '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: s.ak, sk: s.sk, projectId: s.projectId });
    secrets.push(new URL(signedReply.json.remote_console.url).searchParams.get('token')!);
    const tokenReply = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name: s.user, password: s.password, domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } },
    }));
    const iamToken = String(tokenReply.headers['x-subject-token']);
    secrets.push(iamToken);
    await http('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`, { 'x-auth-token': iamToken, 'content-type': 'application/json' }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');
    await http('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`, { 'x-auth-token': 'ECTforged-token-value-123', 'content-type': 'application/json' }, '{}');
    secrets.push('ECTforged-token-value-123');
    // A query string carrying a secret is never logged.
    await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/detail?secret=query-secret-value`, { 'x-auth-token': iamToken });
    secrets.push('query-secret-value');
    await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"x","password":"wrong-password-logged?","domain":{"name":"d"}}}},"scope":{"project":{"id":"x"}}}}');
    secrets.push('wrong-password-logged?');
  } finally {
    await stack.stop();
  }
  const text = stack.logs.text;
  assert.ok(stack.logs.lines.filter((l) => l.includes('"msg":"request"')).length >= 8, 'the access log was captured');
  // The issued event rides on its call's access line.
  assert.match(text, /"audit":"issued"[^\n]*"msg":"request"/);
  for (const secret of secrets) assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 4)}...) appears in the logs`);
  assert.doesNotMatch(text, /SDK-HMAC-SHA256 Access=/);
  assert.doesNotMatch(text, /Signature=[0-9a-f]{64}/);
});
