/**
 * The official IAM SDK (`@huaweicloud/huaweicloud-sdk-iam`, GlobalCredentials) against a real
 * stack for every identity lifecycle call, with its error paths (not found, forbidden, over the
 * key limit, bad body); the ECS SDK then succeeds or fails with Huawei's codes (inactive key,
 * deleted key, expired temporary credential, disabled user). Every change is audited.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateCredentialOption, CreatePermanentAccessKeyRequest, CreatePermanentAccessKeyRequestBody, CreateTemporaryAccessKeyByTokenRequest,
  CreateTemporaryAccessKeyByTokenRequestBody, DeletePermanentAccessKeyRequest, IdentityToken, KeystoneCreateProjectOption,
  KeystoneCreateProjectRequest, KeystoneCreateProjectRequestBody, KeystoneCreateUserOption, KeystoneCreateUserRequest,
  KeystoneCreateUserRequestBody, KeystoneDeleteUserRequest, KeystoneListAuthProjectsRequest, KeystoneListProjectsRequest, KeystoneListUsersRequest,
  KeystoneShowProjectRequest, KeystoneShowUserRequest, KeystoneUpdatePasswordOption, KeystoneUpdateProjectOption, KeystoneUpdateProjectRequest,
  KeystoneUpdateProjectRequestBody, KeystoneUpdateUserPasswordRequest, KeystoneUpdateUserPasswordRequestBody, KeystoneValidateTokenRequest,
  ListPermanentAccessKeysRequest, ShowPermanentAccessKeyRequest, TokenAuth, TokenAuthIdentity, UpdateCredentialOption,
  UpdatePermanentAccessKeyRequest, UpdatePermanentAccessKeyRequestBody, UpdateUserOption, UpdateUserRequest, UpdateUserRequestBody,
} from '@huaweicloud/huaweicloud-sdk-iam/v3/public-api.js';
import type { IamClient } from '@huaweicloud/huaweicloud-sdk-iam/v3/public-api.js';
import { ManualClock } from '../../../src/clock.js';
import { iamClient, iamProjectClient } from '../../helpers/iam-sdk.js';
import { remoteConsole, sdkClient, sdkFailure, showServer } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
// The SDKs sign with the real time: the stack's clock follows it, and tests move it forward.
const clock = new ManualClock(Date.now());
let adminIam: IamClient;
let admin: { id: string; domainId: string; ak: string; sk: string };
let aliceId: string;

const passwordToken = async (user: string, password: string, projectId = s.projectId): Promise<{ status: number; token: string }> => {
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: s.domain } } } }, scope: { project: { id: projectId } } } });
  const r = await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, body);
  return { status: r.status, token: String(r.headers['x-subject-token'] ?? '') };
};

before(async () => {
  // A wide skew window: the expiry test moves the server's clock past an expiry while the SDK signs with the real time.
  stack = await startStack({ clock, options: { signatureMaxSkewSeconds: 7200, apiRateLimitPerCredential: 100000 } });
  s = await seed(stack.app);
  const id = stack.app.services.identity;
  const u = await id.createUser({ domain: s.domain, name: 'root-admin', password: 'Adm1n-passw0rd', admin: true });
  const k = await id.createAccessKey({ userId: u.id, projectId: s.projectId });
  admin = { id: u.id, domainId: u.domainId, ak: k.ak, sk: k.sk };
  adminIam = iamClient(stack.apiUrl, admin.ak, admin.sk, admin.domainId);
  aliceId = (await id.findUser(s.domain, s.user)).id;
});
after(() => stack.stop());

const createKey = (client: IamClient, userId: string, description?: string) => {
  let opt = new CreateCredentialOption().withUserId(userId);
  if (description !== undefined) opt = opt.withDescription(description);
  return client.createPermanentAccessKey(new CreatePermanentAccessKeyRequest().withBody(new CreatePermanentAccessKeyRequestBody().withCredential(opt))) as Promise<any>;
};
const setStatus = (client: IamClient, ak: string, status: 'active' | 'inactive') =>
  client.updatePermanentAccessKey(new UpdatePermanentAccessKeyRequest().withAccessKey(ak)
    .withBody(new UpdatePermanentAccessKeyRequestBody().withCredential(new UpdateCredentialOption().withStatus(status)))) as Promise<any>;
const createUser = (client: IamClient, name: string, password?: string) => {
  let opt = new KeystoneCreateUserOption().withName(name).withDomainId(admin.domainId);
  if (password !== undefined) opt = opt.withPassword(password);
  return client.keystoneCreateUser(new KeystoneCreateUserRequest().withBody(new KeystoneCreateUserRequestBody().withUser(opt))) as Promise<any>;
};
const enableUser = (client: IamClient, userId: string, enabled: boolean) =>
  client.updateUser(new UpdateUserRequest().withUserId(userId).withBody(new UpdateUserRequestBody().withUser(new UpdateUserOption().withEnabled(enabled)))) as Promise<any>;

test('permanent access keys: create, list, show, deactivate/activate, delete; the ECS SDK follows each step', async () => {
  const u = await createUser(adminIam, 'bob', 'B0b-passw0rd!');
  assert.equal(u.httpStatusCode, 201);
  const bobId = u.user.id as string;
  const created = await createKey(adminIam, bobId, 'ci key');
  assert.equal(created.httpStatusCode, 201);
  const { access: ak, secret: sk } = created.credential;
  assert.match(ak, /^[A-Z0-9]{20}$/);
  assert.equal(created.credential.status, 'active');
  assert.equal(created.credential.description, 'ci key');
  assert.equal(created.credential.user_id, bobId);
  const ecs = sdkClient(stack.apiUrl, ak, sk, s.projectId);
  assert.equal(((await showServer(ecs, s.active.id)) as any).server.id, s.active.id);

  const list: any = await adminIam.listPermanentAccessKeys(new ListPermanentAccessKeysRequest().withUserId(bobId));
  assert.deepEqual(list.credentials.map((c: any) => c.access), [ak]);
  assert.equal(list.credentials[0].secret, undefined);
  const shown: any = await adminIam.showPermanentAccessKey(new ShowPermanentAccessKeyRequest().withAccessKey(ak));
  assert.equal(shown.credential.access, ak);
  assert.equal(shown.credential.status, 'active');
  // list and show carry the same fields (show adds last_use_time).
  assert.deepEqual(Object.keys(list.credentials[0]).sort(), Object.keys(shown.credential).filter((k) => k !== 'last_use_time').sort());

  // The key's own user manages it too (GlobalCredentials signed with the key itself).
  const bobIam = iamClient(stack.apiUrl, ak, sk, admin.domainId);
  const own: any = await bobIam.listPermanentAccessKeys(new ListPermanentAccessKeysRequest());
  assert.deepEqual(own.credentials.map((c: any) => c.access), [ak]);

  const off = await setStatus(adminIam, ak, 'inactive');
  assert.equal(off.credential.status, 'inactive');
  const refused = await sdkFailure(showServer(ecs, s.active.id));
  assert.equal(refused.httpStatusCode, 401);
  assert.equal(refused.errorCode, 'APIGW.0301');
  assert.match(refused.errorMsg, /inactive/);
  // Only a caller holding the SK learns that: a wrong signature gets the generic answer.
  const guess = await sdkFailure(showServer(sdkClient(stack.apiUrl, ak, 'x'.repeat(40), s.projectId), s.active.id));
  assert.equal(guess.httpStatusCode, 401);
  assert.doesNotMatch(guess.errorMsg, /inactive/);
  await setStatus(adminIam, ak, 'active');
  assert.equal(((await showServer(ecs, s.active.id)) as any).server.id, s.active.id);

  const del: any = await adminIam.deletePermanentAccessKey(new DeletePermanentAccessKeyRequest().withAccessKey(ak));
  assert.equal(del.httpStatusCode, 204);
  const gone = await sdkFailure(showServer(ecs, s.active.id));
  assert.equal(gone.httpStatusCode, 401);
  assert.equal(gone.errorCode, 'APIGW.0301');
  const notFound = await sdkFailure(adminIam.showPermanentAccessKey(new ShowPermanentAccessKeyRequest().withAccessKey(ak)));
  assert.equal(notFound.httpStatusCode, 404);

  const audit = await stack.app.services.stores.audit.listAudit({ target: `ak:${ak}` });
  assert.deepEqual(audit.map((e) => e.kind), ['ak-created', 'ak-deactivated', 'ak-activated', 'ak-deleted']);
  for (const e of audit) {
    assert.equal(e.actorUserId, admin.id);
    assert.equal(e.actorCredential, `ak:${admin.ak}`);
    assert.match(e.requestId ?? '', /^[0-9a-f]{32}$/);
    assert.equal(e.clientAddress, '127.0.0.1');
  }
});

test('Huawei\'s limit of 2 permanent keys per user: the third is 400 akSkNumExceed', async () => {
  const u = await createUser(adminIam, 'carol', 'C4rol-passw0rd');
  const id = u.user.id as string;
  await createKey(adminIam, id);
  await createKey(adminIam, id);
  const e = await sdkFailure(createKey(adminIam, id));
  assert.equal(e.httpStatusCode, 400);
  assert.equal(e.errorMsg, 'akSkNumExceed');
  // Concurrent creations for one user cannot exceed it either.
  const v = (await createUser(adminIam, 'victor', 'V1ctor-passw0rd')).user.id as string;
  const results = await Promise.allSettled([1, 2, 3, 4].map(() => createKey(adminIam, v)));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
});

test('error paths: forbidden for another user\'s keys and for user administration, not found, bad bodies', async () => {
  // Alice (no administrator) may not create a key for the administrator, list users or create projects.
  const alice = iamClient(stack.apiUrl, s.ak, s.sk, admin.domainId);
  const f1 = await sdkFailure(createKey(alice, admin.id));
  assert.equal(f1.httpStatusCode, 403);
  const f2 = await sdkFailure(alice.keystoneListUsers(new KeystoneListUsersRequest()));
  assert.equal(f2.httpStatusCode, 403);
  const f3 = await sdkFailure(alice.keystoneCreateProject(new KeystoneCreateProjectRequest().withBody(
    new KeystoneCreateProjectRequestBody().withProject(new KeystoneCreateProjectOption().withName('cn-south-1').withDomainId(admin.domainId)))));
  assert.equal(f3.httpStatusCode, 403);
  const f4 = await sdkFailure(enableUser(alice, admin.id, false));
  assert.equal(f4.httpStatusCode, 403);
  const f5 = await sdkFailure(alice.showPermanentAccessKey(new ShowPermanentAccessKeyRequest().withAccessKey(admin.ak)));
  assert.equal(f5.httpStatusCode, 403);
  // Not found.
  const n1 = await sdkFailure(adminIam.keystoneShowUser(new KeystoneShowUserRequest().withUserId('0'.repeat(32))));
  assert.equal(n1.httpStatusCode, 404);
  const n2 = await sdkFailure(iamProjectClient(stack.apiUrl, admin.ak, admin.sk, '0'.repeat(32)).keystoneShowProject(new KeystoneShowProjectRequest()));
  assert.equal(n2.httpStatusCode, 404);
  const n3 = await sdkFailure(createKey(adminIam, '0'.repeat(32)));
  assert.equal(n3.httpStatusCode, 404);
  const n4 = await sdkFailure(adminIam.deletePermanentAccessKey(new DeletePermanentAccessKeyRequest().withAccessKey('NOSUCHKEY0000000000A')));
  assert.equal(n4.httpStatusCode, 404);
  // Bad bodies: IAM.0011.
  const b1 = await sdkFailure(adminIam.createPermanentAccessKey(new CreatePermanentAccessKeyRequest().withBody(new CreatePermanentAccessKeyRequestBody())));
  assert.equal(b1.httpStatusCode, 400);
  assert.equal(b1.errorCode, 'IAM.0011');
  const b2 = await sdkFailure(setStatus(adminIam, admin.ak, 'paused' as 'active'));
  assert.equal(b2.errorCode, 'IAM.0011');
  const b3 = await sdkFailure(createUser(adminIam, 'x', 'short'));
  assert.equal(b3.errorCode, 'IAM.0011');
  const dup = await sdkFailure(createUser(adminIam, s.user, 'Secr3t-passw0rd'));
  assert.equal(dup.httpStatusCode, 409);
});

test('users: create, list, show, disable (tokens and keys refused at once), enable, password change revokes tokens, delete', async () => {
  const created = await createUser(adminIam, 'dave', 'D4ve-passw0rd');
  const daveId = created.user.id as string;
  assert.equal(created.user.enabled, true);
  assert.equal(created.user.domain_id, admin.domainId);
  const list: any = await adminIam.keystoneListUsers(new KeystoneListUsersRequest());
  assert.ok(list.users.some((u: any) => u.id === daveId && u.name === 'dave'));
  const shown: any = await adminIam.keystoneShowUser(new KeystoneShowUserRequest().withUserId(daveId));
  assert.equal(shown.user.name, 'dave');
  assert.deepEqual(Object.keys(shown.user).sort(), Object.keys(list.users.find((u: any) => u.id === daveId)).sort());

  const key = (await createKey(adminIam, daveId)).credential;
  const ecs = sdkClient(stack.apiUrl, key.access, key.secret, s.projectId);
  const t = await passwordToken('dave', 'D4ve-passw0rd');
  assert.equal(t.status, 201);
  const disabled = await enableUser(adminIam, daveId, false);
  assert.equal(disabled.user.enabled, false);
  const e = await sdkFailure(showServer(ecs, s.active.id));
  assert.equal(e.httpStatusCode, 401);
  assert.match(e.errorMsg, /disabled/);
  const tok = await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}`, { 'x-auth-token': t.token });
  assert.equal(tok.status, 401);
  // A disabled user cannot log in either (told only with the right password).
  assert.equal((await passwordToken('dave', 'D4ve-passw0rd')).status, 401);
  await enableUser(adminIam, daveId, true);
  assert.equal(((await showServer(ecs, s.active.id)) as any).server.id, s.active.id);
  // A token that outlived the disabling (issued at the same moment on another node) is refused too.
  // That node disables the user in the store and appends the revocation to the change feed: this
  // node's cache of users drops it when it reads the feed (within cacheFeedLagMs).
  const racing = await passwordToken('dave', 'D4ve-passw0rd');
  await stack.app.services.stores.identity.updateUser(daveId, { enabled: false });
  await stack.app.services.stores.changes.appendChange({ at: Date.now(), kind: 'credential-revoked', serverId: null, sessionId: null, credential: `user:${daveId}` });
  const deadline = Date.now() + 2 * stack.app.services.config.cacheFeedLagMs;
  let status = 0;
  while ((status = (await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}`, { 'x-auth-token': racing.token })).status) !== 401 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(status, 401);
  await stack.app.services.stores.identity.updateUser(daveId, { enabled: true });
  await stack.app.services.stores.identity.deleteUserIamTokens(daveId);
  // The token ended with the disabling: enabling again does not bring it back.
  assert.equal((await http('GET', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}`, { 'x-auth-token': t.token })).status, 401);

  // Password change (the user's own, with the original): every token of theirs ends.
  const t2 = await passwordToken('dave', 'D4ve-passw0rd');
  const daveIam = iamClient(stack.apiUrl, key.access, key.secret, admin.domainId);
  const wrong = await sdkFailure(daveIam.keystoneUpdateUserPassword(new KeystoneUpdateUserPasswordRequest().withUserId(daveId).withBody(
    new KeystoneUpdateUserPasswordRequestBody().withUser(new KeystoneUpdatePasswordOption().withPassword('N3w-passw0rd').withOriginalPassword('not-it-123')))));
  assert.equal(wrong.httpStatusCode, 400);
  const notHis = await sdkFailure(daveIam.keystoneUpdateUserPassword(new KeystoneUpdateUserPasswordRequest().withUserId(aliceId).withBody(
    new KeystoneUpdateUserPasswordRequestBody().withUser(new KeystoneUpdatePasswordOption().withPassword('N3w-passw0rd').withOriginalPassword(s.password)))));
  assert.equal(notHis.httpStatusCode, 403);
  const changed: any = await daveIam.keystoneUpdateUserPassword(new KeystoneUpdateUserPasswordRequest().withUserId(daveId).withBody(
    new KeystoneUpdateUserPasswordRequestBody().withUser(new KeystoneUpdatePasswordOption().withPassword('N3w-passw0rd').withOriginalPassword('D4ve-passw0rd'))));
  assert.equal(changed.httpStatusCode, 204);
  const v = await sdkFailure(adminIam.keystoneValidateToken(new KeystoneValidateTokenRequest().withXSubjectToken(t2.token)));
  assert.equal(v.httpStatusCode, 404);
  assert.equal((await passwordToken('dave', 'D4ve-passw0rd')).status, 401);
  assert.equal((await passwordToken('dave', 'N3w-passw0rd')).status, 201);

  const del: any = await adminIam.keystoneDeleteUser(new KeystoneDeleteUserRequest().withUserId(daveId));
  assert.equal(del.httpStatusCode, 204);
  const after = await sdkFailure(showServer(ecs, s.active.id));
  assert.equal(after.httpStatusCode, 401);
  const n = await sdkFailure(adminIam.keystoneShowUser(new KeystoneShowUserRequest().withUserId(daveId)));
  assert.equal(n.httpStatusCode, 404);
  const kinds = (await stack.app.services.stores.audit.listAudit({ target: `user:${daveId}` })).map((e) => e.kind);
  assert.deepEqual(kinds, ['user-created', 'user-disabled', 'user-enabled', 'user-password-changed', 'user-deleted']);
});

test('projects: create, list, show, update; auth projects of the caller', async () => {
  const c: any = await adminIam.keystoneCreateProject(new KeystoneCreateProjectRequest().withBody(
    new KeystoneCreateProjectRequestBody().withProject(new KeystoneCreateProjectOption().withName('cn-south-1').withDomainId(admin.domainId).withDescription('south'))));
  assert.equal(c.httpStatusCode, 201);
  const pid = c.project.id as string;
  assert.match(pid, /^[0-9a-f]{32}$/);
  assert.equal(c.project.domain_id, admin.domainId);
  const list: any = await adminIam.keystoneListProjects(new KeystoneListProjectsRequest().withName('cn-south-1'));
  assert.deepEqual(list.projects.map((p: any) => p.id), [pid]);
  // keystoneShowProject and keystoneUpdateProject take the project from BasicCredentials.
  const inProject = iamProjectClient(stack.apiUrl, admin.ak, admin.sk, pid);
  const shown: any = await inProject.keystoneShowProject(new KeystoneShowProjectRequest());
  assert.equal(shown.project.description, 'south');
  const up: any = await inProject.keystoneUpdateProject(new KeystoneUpdateProjectRequest().withBody(
    new KeystoneUpdateProjectRequestBody().withProject(new KeystoneUpdateProjectOption().withName('cn-south-2'))));
  assert.equal(up.project.name, 'cn-south-2');
  const alice = iamClient(stack.apiUrl, s.ak, s.sk, admin.domainId);
  const mine: any = await alice.keystoneListAuthProjects(new KeystoneListAuthProjectsRequest());
  assert.ok(mine.projects.some((p: any) => p.id === pid));
  assert.ok(mine.projects.some((p: any) => p.id === s.projectId));
  const dup = await sdkFailure(inProject.keystoneUpdateProject(new KeystoneUpdateProjectRequest().withBody(
    new KeystoneUpdateProjectRequestBody().withProject(new KeystoneUpdateProjectOption().withName('cn-north-4')))));
  assert.equal(dup.httpStatusCode, 409);
  const kinds = (await stack.app.services.stores.audit.listAudit({ target: `project:${pid}` })).map((e) => e.kind);
  assert.deepEqual(kinds, ['project-created', 'project-updated']);
});

test('temporary credentials: by token, 15 min to 24 h; the ECS SDK uses them with X-Security-Token until they expire or the user is disabled', async () => {
  const u = await createUser(adminIam, 'erin', 'Er1n-passw0rd');
  const erinId = u.user.id as string;
  const key = (await createKey(adminIam, erinId)).credential;
  const erinIam = iamClient(stack.apiUrl, key.access, key.secret, admin.domainId);
  const t = await passwordToken('erin', 'Er1n-passw0rd');
  const temp = (seconds: number, token = t.token) => erinIam.createTemporaryAccessKeyByToken(new CreateTemporaryAccessKeyByTokenRequest().withBody(
    new CreateTemporaryAccessKeyByTokenRequestBody().withAuth(new TokenAuth().withIdentity(new TokenAuthIdentity().withMethods(['token'])
      .withToken(new IdentityToken().withId(token).withDurationSeconds(seconds)))))) as Promise<any>;
  for (const bad of [899, 86_401]) {
    const e = await sdkFailure(temp(bad));
    assert.equal(e.httpStatusCode, 400);
    assert.equal(e.errorCode, 'IAM.0011');
  }
  // Someone else's token: 403.
  const aliceToken = await passwordToken(s.user, s.password);
  assert.equal((await sdkFailure(temp(900, aliceToken.token))).httpStatusCode, 403);
  const r = await temp(900);
  assert.equal(r.httpStatusCode, 201);
  const { access, secret, securitytoken, expires_at } = r.credential;
  assert.equal(Date.parse(expires_at) - clock.now(), 900_000);
  const ecs = sdkClient(stack.apiUrl, access, secret, s.projectId, undefined, securitytoken);
  assert.equal(((await remoteConsole(ecs, s.active.id)) as any).remote_console.protocol, 'vnc');
  // Without the security token, or with another one, the temporary AK/SK are refused.
  assert.equal((await sdkFailure(showServer(sdkClient(stack.apiUrl, access, secret, s.projectId), s.active.id))).httpStatusCode, 401);
  assert.equal((await sdkFailure(showServer(sdkClient(stack.apiUrl, access, secret, s.projectId, undefined, securitytoken + 'x'), s.active.id))).httpStatusCode, 401);
  // The user disabled: refused; enabled again: accepted.
  await enableUser(adminIam, erinId, false);
  const off = await sdkFailure(showServer(ecs, s.active.id));
  assert.equal(off.httpStatusCode, 401);
  assert.equal(off.errorCode, 'APIGW.0301');
  await enableUser(adminIam, erinId, true);
  assert.equal(((await showServer(ecs, s.active.id)) as any).server.id, s.active.id);
  // Expired: refused. (The SDK signs with the real time; the server's clock moves past the expiry.)
  clock.advance(900_000);
  const expired = await sdkFailure(showServer(ecs, s.active.id));
  assert.equal(expired.httpStatusCode, 401);
  assert.equal(expired.errorCode, 'APIGW.0301');
  assert.match(expired.errorMsg, /expired/);
  clock.set(Date.now());
  // Temporary keys are not listed with the permanent ones.
  const list: any = await adminIam.listPermanentAccessKeys(new ListPermanentAccessKeysRequest().withUserId(erinId));
  assert.deepEqual(list.credentials.map((c: any) => c.access), [key.access]);
  assert.equal((await stack.app.services.stores.audit.listAudit({ target: `ak:${access}` }))[0]?.kind, 'ak-temporary-created');
});
