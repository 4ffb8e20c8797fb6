/**
 * Consoles follow their credential: a console opened with a URL issued through an access key
 * that is then deactivated or deleted, or through a user (key or IAM token) that is then disabled
 * or deleted, closes within 1 s with code 4210 and a reason the page shows; unused URLs issued
 * through it are refused (401 `credential-revoked`, in the page's pre-check too). Other
 * credentials' consoles stay open.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DemoVncServer } from '../../../src/demo/index.js';
import { CloseCode } from '../../../src/proxy/close-codes.js';
import { openConsole, openWs, wsUrlOf } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { http } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let vnc: DemoVncServer;
let stack: Stack;
let s: Seed;

before(async () => {
  vnc = new DemoVncServer({ name: 'revoked', width: 160, height: 100 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  stack = await startStack();
  s = await seed(stack.app, { host: '127.0.0.1', port });
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

const operator = { principal: null, actor: { userId: null, credential: 'cli:test' } };
const precheck = async (u: string): Promise<unknown> =>
  (await http('POST', `${stack.proxyUrl}/api/console/info`, { 'content-type': 'application/json' }, JSON.stringify({ token: new URL(u).searchParams.get('token') }))).json;

async function newUser(name: string): Promise<{ id: string; ak: string; sk: string }> {
  const id = stack.app.services.identity;
  const u = await id.createUser({ domain: s.domain, name, password: 'passw0rd-123' });
  const k = await id.createAccessKey({ userId: u.id, projectId: s.projectId });
  return { id: u.id, ak: k.ak, sk: k.sk };
}

test('a key deactivated: its console closes within 1 s with 4210, its unused URL is refused; another key\'s console stays', async () => {
  const a = await newUser('frank');
  const b = await newUser('grace');
  const urlA = (await remoteConsole(sdkClient(stack.apiUrl, a.ak, a.sk, s.projectId), s.active.id)).remote_console.url;
  const unusedA = (await remoteConsole(sdkClient(stack.apiUrl, a.ak, a.sk, s.projectId), s.active.id)).remote_console.url;
  const urlB = (await remoteConsole(sdkClient(stack.apiUrl, b.ak, b.sk, s.projectId), s.active.id)).remote_console.url;
  const ca = await openConsole(urlA);
  const cb = await openConsole(urlB);
  const t0 = Date.now();
  await stack.app.services.iam.updateAccessKey(operator, a.ak, { status: 'inactive' });
  const closed = await ca.closed;
  assert.ok(Date.now() - t0 < 1000, `closed after ${Date.now() - t0} ms`);
  assert.equal(closed.code, CloseCode.CredentialRevoked);
  assert.match(closed.reason, /deactivated, deleted or disabled/);
  const r = await openWs(wsUrlOf(unusedA));
  assert.ok(!r.ok && r.status === 401 && /deactivated, deleted or disabled/.test(r.body), JSON.stringify(r));
  assert.deepEqual(await precheck(unusedA), { state: 'server-not-active', reason: 'credential-revoked' });
  // Grace's console is untouched.
  assert.equal(cb.ws.readyState, cb.ws.OPEN);
  cb.ws.close();
});

test('a user disabled: consoles opened through their key and their IAM token close; deleting a key closes its own', async () => {
  const h = await newUser('heidi');
  const viaKey = (await remoteConsole(sdkClient(stack.apiUrl, h.ak, h.sk, s.projectId), s.active.id)).remote_console.url;
  const login = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'heidi', password: 'passw0rd-123', domain: { name: s.domain } } } }, scope: { project: { id: s.projectId } } } });
  const token = String((await http('POST', `${stack.apiUrl}/v3/auth/tokens`, { 'content-type': 'application/json' }, login)).headers['x-subject-token']);
  const rc = await http('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`,
    { 'content-type': 'application/json', 'x-auth-token': token }, '{"remote_console":{"type":"novnc","protocol":"vnc"}}');
  const viaToken = rc.json.remote_console.url as string;
  const c1 = await openConsole(viaKey);
  const c2 = await openConsole(viaToken);
  const t0 = Date.now();
  await stack.app.services.iam.updateUser(operator, h.id, { enabled: false });
  const [x, y] = await Promise.all([c1.closed, c2.closed]);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(x.code, CloseCode.CredentialRevoked);
  assert.equal(y.code, CloseCode.CredentialRevoked);

  const i = await newUser('ivan');
  const c3 = await openConsole((await remoteConsole(sdkClient(stack.apiUrl, i.ak, i.sk, s.projectId), s.active.id)).remote_console.url);
  await stack.app.services.iam.deleteAccessKey(operator, i.ak);
  assert.equal((await c3.closed).code, CloseCode.CredentialRevoked);
});

test('the change feed carries it: a revocation appended by another node closes this node\'s console', async () => {
  const k = await newUser('ken');
  const c = await openConsole((await remoteConsole(sdkClient(stack.apiUrl, k.ak, k.sk, s.projectId), s.active.id)).remote_console.url);
  // As another node would: only the feed, nothing in this process.
  await stack.app.services.stores.changes.appendChange({ at: Date.now(), kind: 'credential-revoked', serverId: null, sessionId: null, credential: `ak:${k.ak}` });
  const t0 = Date.now();
  assert.equal((await c.closed).code, CloseCode.CredentialRevoked);
  assert.ok(Date.now() - t0 < 1000);
});

test('a revocation lost in a gap of the change feed (purged before this node read it): the re-check closes the console', async () => {
  const m = await newUser('mallory-gap');
  const c = await openConsole((await remoteConsole(sdkClient(stack.apiUrl, m.ak, m.sk, s.projectId), s.active.id)).remote_console.url);
  const changes = stack.app.services.stores.changes;
  // The key deactivated with no change in the feed (as if its change had been purged), then a gap
  // the proxy sees at its next read: two changes, the first purged before it reads them.
  await stack.app.services.stores.identity.updateAccessKey(m.ak, { status: 'inactive' });
  const at = Date.now();
  await changes.appendChange({ at, kind: 'session-kill', serverId: null, sessionId: 'none-1', credential: null });
  await changes.appendChange({ at, kind: 'session-kill', serverId: null, sessionId: 'none-2', credential: null });
  await changes.purgeChanges(at + 1);
  const closed = await Promise.race([c.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
  assert.ok(closed, 'the console closed after the re-check');
  assert.equal(closed.code, CloseCode.CredentialRevoked);
});
