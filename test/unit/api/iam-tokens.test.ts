/** IAM tokens: POST /v3/auth/tokens, X-Auth-Token on API calls, expiry, revocation. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/clock.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
const clock = new ManualClock(Date.UTC(2026, 0, 1));
before(async () => {
  stack = await startStack({ clock });
  s = await seed(stack.app);
});
after(() => stack.stop());

const authBody = (o: { user?: string; password?: string; domain?: string; project?: Record<string, string> } = {}): string => JSON.stringify({
  auth: {
    identity: { methods: ['password'], password: { user: { name: o.user ?? s.user, password: o.password ?? s.password, domain: { name: o.domain ?? s.domain } } } },
    scope: { project: o.project ?? { id: s.projectId } },
  },
});
const getToken = (body = authBody()) => http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, body);
const rc = (token: string, server = s.active.id) => http('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${server}/remote_console`,
  { 'content-type': 'application/json', 'x-auth-token': token }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');

test('password auth answers 201, X-Subject-Token and a Keystone-shaped body', async () => {
  const r = await getToken();
  assert.equal(r.status, 201, r.text);
  const token = String(r.headers['x-subject-token']);
  assert.ok(token.length > 40);
  assert.deepEqual(r.json.token.methods, ['password']);
  assert.equal(r.json.token.project.id, s.projectId);
  assert.equal(r.json.token.user.name, s.user);
  assert.equal(r.json.token.user.domain.name, s.domain);
  assert.equal(Date.parse(r.json.token.expires_at) - Date.parse(r.json.token.issued_at), 24 * 3600_000);
  assert.doesNotMatch(r.text, new RegExp(token));
});

test('project scope by name works too', async () => {
  const r = await getToken(authBody({ project: { name: 'cn-north-4' } }));
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.token.project.id, s.projectId);
});

test('X-Auth-Token works on remote_console, ShowServer and ListServersDetails', async () => {
  const token = String((await getToken()).headers['x-subject-token']);
  const r = await rc(token);
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.remote_console.url, /vnc_auto\.html\?token=/);
  const show = await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}`, { 'x-auth-token': token });
  assert.equal(show.json.server.id, s.active.id);
  const list = await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/detail`, { 'x-auth-token': token });
  assert.equal(list.json.count, 2);
  // A token of project 1 cannot act on project 2.
  const other = await http('POST', `${stack.apiUrl}/v1/${s.otherProjectId}/cloudservers/${s.foreign.id}/remote_console`,
    { 'content-type': 'application/json', 'x-auth-token': token }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');
  assert.equal(other.status, 400);
  assert.equal(other.json.error.code, 'Common.0018');
});

test('wrong password, unknown user or domain, foreign project: 401, same message for users', async () => {
  const a = await getToken(authBody({ password: 'wrong-password' }));
  const b = await getToken(authBody({ user: 'mallory' }));
  const c = await getToken(authBody({ domain: 'nodomain' }));
  for (const r of [a, b, c]) {
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 401);
    assert.equal(r.json.error.message, 'The username or password is wrong.');
    assert.equal(r.headers['x-subject-token'], undefined);
  }
  const d = await getToken(authBody({ project: { id: 'f'.repeat(32) } }));
  assert.equal(d.status, 401);
});

test('bad bodies: 400 IAM.0011', async () => {
  for (const b of ['', '{', '{}', '{"auth":{}}', '{"auth":{"identity":{"methods":["token"]}}}', authBody().replace('"scope"', '"scopex"')]) {
    const r = await getToken(b);
    assert.equal(r.status, 400, b);
    assert.equal(r.json.error_code, 'IAM.0011', b);
  }
});

test('an expired token gets 401 (injected clock)', async () => {
  const token = String((await getToken()).headers['x-subject-token']);
  assert.equal((await rc(token)).status, 200);
  clock.advance(24 * 3600_000 - 1000);
  assert.equal((await rc(token)).status, 200);
  clock.advance(1000);
  const r = await rc(token);
  assert.equal(r.status, 401);
  assert.equal(r.json.error_code, 'APIGW.0301');
});

test('a revoked token gets 401; revoking needs the same user', async () => {
  const token = String((await getToken()).headers['x-subject-token']);
  const other = String((await getToken()).headers['x-subject-token']);
  const v = await http('GET', `${stack.apiUrl}/v3/auth/tokens`, { 'x-auth-token': other, 'x-subject-token': token });
  assert.equal(v.status, 200);
  assert.equal(v.json.token.project.id, s.projectId);
  const del = await http('DELETE', `${stack.apiUrl}/v3/auth/tokens`, { 'x-auth-token': other, 'x-subject-token': token });
  assert.equal(del.status, 204);
  const r = await rc(token);
  assert.equal(r.status, 401);
  assert.equal(r.json.error_code, 'APIGW.0301');
  const again = await http('DELETE', `${stack.apiUrl}/v3/auth/tokens`, { 'x-auth-token': other, 'x-subject-token': token });
  assert.equal(again.status, 404);
  const noCaller = await http('DELETE', `${stack.apiUrl}/v3/auth/tokens`, { 'x-subject-token': other });
  assert.equal(noCaller.status, 401);
  assert.equal((await rc(other)).status, 200);
});

test('GET and DELETE /v3/auth/tokens on another user\'s token: 403 as Keystone answers, no details; a token that is not valid: 404', async () => {
  await stack.app.services.identity.createUser({ domain: s.domain, name: 'bob', password: 'Bobs-passw0rd' });
  const alice = String((await getToken()).headers['x-subject-token']);
  const bob = String((await getToken(authBody({ user: 'bob', password: 'Bobs-passw0rd' }))).headers['x-subject-token']);
  const tokens = (caller: string, subject: string, method = 'GET') => http(method, `${stack.apiUrl}/v3/auth/tokens`, { 'x-auth-token': caller, 'x-subject-token': subject });

  const own = await tokens(bob, bob);
  assert.equal(own.status, 200, own.text);
  assert.equal(own.json.token.user.name, 'bob');

  for (const method of ['GET', 'DELETE']) {
    const r = await tokens(bob, alice, method);
    assert.equal(r.status, 403, `${method}: ${r.text}`);
    assert.deepEqual(r.json, { error: { code: 403, title: 'Forbidden', message: `You are not authorized to perform the requested action: identity:${method === 'GET' ? 'validate' : 'revoke'}_token.` } });
    assert.equal(r.headers['x-subject-token'], undefined);
    assert.doesNotMatch(r.text, /alice|cn-north-4|acme/);
    const unknown = await tokens(bob, 'ECTnot-a-token', method);
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error_msg: 'Could not find token.', error_code: 'IAM.0004' });
  }
  // Alice's token was not revoked by Bob's attempt.
  assert.equal((await rc(alice)).status, 200);
  // A caller without a valid token of its own is 401 before anything is looked up.
  assert.equal((await tokens('ECTnot-a-token', alice)).status, 401);
});
