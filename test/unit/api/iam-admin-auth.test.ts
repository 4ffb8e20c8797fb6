/**
 * Domain administrators (Huawei's `admin` group) and the shared authentication seam (admin-auth.ts):
 * IAM tokens and AK/SK signatures (GlobalCredentials with X-Domain-Id, as the IAM SDK signs),
 * Huawei's 401/403 bodies, disabled users refused, `user create --admin`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { KeystoneValidateTokenRequest } from '@huaweicloud/huaweicloud-sdk-iam/v3/public-api.js';
import { IamAuth, sendIamError } from '../../../src/api/admin-auth.js';
import { systemClock } from '../../../src/clock.js';
import { RateLimiter } from '../../../src/util/rate-limiter.js';
import { runCli } from '../../helpers/cli.js';
import { iamClient } from '../../helpers/iam-sdk.js';
import { sdkFailure } from '../../helpers/huawei-sdk.js';
import { http, signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, tempDir, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
let admin: { id: string; domainId: string; ak: string; sk: string; token: string };
let aliceToken: string;

const tokenFor = async (domain: string, user: string, password: string, projectId: string): Promise<string> => {
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: domain } } } }, scope: { project: { id: projectId } } } });
  const r = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, body);
  assert.equal(r.status, 201, r.text);
  return String(r.headers['x-subject-token']);
};

before(async () => {
  stack = await startStack();
  s = await seed(stack.app);
  const id = stack.app.services.identity;
  const u = await id.createUser({ domain: s.domain, name: 'root-admin', password: 'Adm1n-passw0rd', admin: true });
  const k = await id.createAccessKey({ userId: u.id, projectId: s.projectId });
  admin = { id: u.id, domainId: u.domainId, ak: k.ak, sk: k.sk, token: await tokenFor(s.domain, 'root-admin', 'Adm1n-passw0rd', s.projectId) };
  aliceToken = await tokenFor(s.domain, s.user, s.password, s.projectId);
});
after(() => stack.stop());

const validate = (caller: Record<string, string>, subject: string) => http('GET', `${stack.apiUrl}/v3/auth/tokens`, { ...caller, 'x-subject-token': subject });

test('an administrator validates another user\'s token of its domain (IAM token); the user may not read the administrator\'s', async () => {
  const ok = await validate({ 'x-auth-token': admin.token }, aliceToken);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token.user.name, s.user);
  const no = await validate({ 'x-auth-token': aliceToken }, admin.token);
  assert.equal(no.status, 403);
  assert.deepEqual(Object.keys(no.json.error).sort(), ['code', 'message', 'title']);
  assert.equal(no.json.error.code, 403);
  assert.equal(no.json.error.title, 'Forbidden');
});

test('the IAM SDK (GlobalCredentials: AK/SK and X-Domain-Id) validates as the administrator; a foreign domain id is refused', async () => {
  const client = iamClient(stack.apiUrl, admin.ak, admin.sk, admin.domainId);
  const r: any = await client.keystoneValidateToken(new KeystoneValidateTokenRequest().withXSubjectToken(aliceToken));
  assert.equal(r.httpStatusCode, 200);
  assert.equal(r.token.user.name, s.user);
  const wrong = iamClient(stack.apiUrl, admin.ak, admin.sk, 'f'.repeat(32));
  const e = await sdkFailure(wrong.keystoneValidateToken(new KeystoneValidateTokenRequest().withXSubjectToken(aliceToken)));
  assert.equal(e.httpStatusCode, 401);
  // Alice's own key may not read the administrator's token.
  const alice = iamClient(stack.apiUrl, s.ak, s.sk, admin.domainId);
  const f = await sdkFailure(alice.keystoneValidateToken(new KeystoneValidateTokenRequest().withXSubjectToken(admin.token)));
  assert.equal(f.httpStatusCode, 403);
});

test('an administrator of another domain is no administrator here', async () => {
  const id = stack.app.services.identity;
  const p = await id.createProject({ name: 'elsewhere', domain: 'other-corp' });
  await id.createUser({ domain: 'other-corp', name: 'boss', password: 'B0ss-passw0rd', admin: true });
  const bossToken = await tokenFor('other-corp', 'boss', 'B0ss-passw0rd', p.id);
  const r = await validate({ 'x-auth-token': bossToken }, aliceToken);
  assert.equal(r.status, 403, r.text);
});

test('the seam: requireDomainAdmin answers 401 without credentials, 403 for a user, 200 for an administrator', async () => {
  const auth = new IamAuth(stack.app.services.identity, new RateLimiter(1000, 60_000, systemClock), 1000);
  const app = Fastify();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    done(null, body);
  });
  app.decorateRequest('rawBody', null);
  app.decorateRequest('principal', null);
  app.get('/admin-only', async (req, reply) => {
    try {
      const p = await auth.requireDomainAdmin(req, 'iam:users:list');
      return { userId: p.userId, admin: p.admin };
    } catch (e) {
      return sendIamError(reply, e);
    }
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const none = await http('GET', `${url}/admin-only`);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.title, 'Unauthorized');
    const user = await http('GET', `${url}/admin-only`, { 'x-auth-token': aliceToken });
    assert.equal(user.status, 403);
    assert.match(user.json.error.message, /iam:users:list/);
    const byToken = await http('GET', `${url}/admin-only`, { 'x-auth-token': admin.token });
    assert.deepEqual(byToken.json, { userId: admin.id, admin: true });
    const signed = await signedHttp('GET', `${url}/admin-only`, '', { ak: admin.ak, sk: admin.sk });
    assert.equal(signed.status, 200, signed.text);
    const userSigned = await signedHttp('GET', `${url}/admin-only`, '', { ak: s.ak, sk: s.sk });
    assert.equal(userSigned.status, 403);
  } finally {
    await app.close();
  }
});

test('`user create --admin` makes a domain administrator', async () => {
  const dir = tempDir();
  const env = { ECS_CONSOLE_DATA_DIR: dir };
  assert.equal((await runCli(['init'], env)).code, 0);
  const r = await runCli(['user', 'create', '--domain', 'd', '--name', 'root', '--admin', '--password-stdin', '--json'], env, 'password-123\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).admin, true);
  const plain = await runCli(['user', 'create', '--domain', 'd', '--name', 'plain', '--password-stdin', '--json'], env, 'password-123\n');
  assert.equal(JSON.parse(plain.stdout).admin, false);
});
