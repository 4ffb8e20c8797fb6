/**
 * The admin API of the real `ecs-console serve` process, driven as a provisioning tool drives it:
 * Node's global `fetch` (test/helpers/fetch-json only parses the answer), an IAM token from
 * `POST /v3/auth/tokens`, an `SDK-HMAC-SHA256` signature written here from Huawei's description
 * (not the product's signer), a WebSocket library and a few lines of RFB for the console. Every operation: servers created, read, listed with each
 * filter and paged with a marker, changed one field at a time, deleted; bulk sync of 5,000
 * servers twice (the second changes and revokes nothing) and a dry run that changes nothing; live
 * sessions listed and ended (one, then all of a server's) with a reason the browser receives;
 * audit search by each filter, CSV and JSON export. Once on SQLite, once on PostgreSQL (a
 * database this file creates and drops). The first administrator comes from the CLI, as
 * docs/deploy.md says.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import { DemoVncServer } from '../../src/demo/index.js';
import { runCli, startCli, type RunningServer } from '../helpers/cli.js';
import { parseCsv } from '../helpers/csv.js';
import { fetchJson, type FetchReply } from '../helpers/fetch-json.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/stack.js';

const ADMIN_PASSWORD = 'R00t-passw0rd';
const VNC_PASSWORD = 'vncpass1';
const KILLED = 4201;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Huawei's `SDK-HMAC-SHA256` (APIG AK/SK authentication) for a URL without a query: host and X-Sdk-Date signed. */
function signature(method: string, url: URL, body: string, ak: string, sk: string): Record<string, string> {
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const signed = { host: url.host, 'x-sdk-date': date };
  const names = Object.keys(signed).sort();
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const canonical = [method, path, '', names.map((n) => `${n}:${signed[n as keyof typeof signed]}\n`).join(''), names.join(';'), sha256(body)].join('\n');
  const mac = createHmac('sha256', sk).update(`SDK-HMAC-SHA256\n${date}\n${sha256(canonical)}`).digest('hex');
  return { 'x-sdk-date': date, authorization: `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=${names.join(';')}, Signature=${mac}` };
}

/** A browser's side of a console: the WebSocket, RFB 3.8 up to ServerInit (security None, as the proxy offers), one screen update. */
async function openConsole(consoleUrl: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const u = new URL(consoleUrl);
  const ws = new WebSocket(`ws://${u.host}/websockify?token=${u.searchParams.get('token')}`, ['binary'], { origin: u.origin });
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  ws.on('message', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const read = async (n: number): Promise<Buffer> => {
    while (buf.length < n) {
      await Promise.race([new Promise<void>((r) => (wake = r)), closed.then((c) => assert.fail(`closed during the handshake: ${c.code} ${c.reason}`))]);
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`console refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  assert.equal((await read(12)).toString(), 'RFB 003.008\n');
  ws.send(Buffer.from('RFB 003.008\n'));
  const count = (await read(1))[0]!;
  assert.ok([...(await read(count))].includes(1), 'security type None offered');
  ws.send(Buffer.from([1]));
  assert.equal((await read(4)).readUInt32BE(0), 0, 'SecurityResult OK');
  ws.send(Buffer.from([1]));
  const init = await read(24);
  await read(init.readUInt32BE(20));
  // RFC 6143 7.5.3 FramebufferUpdateRequest of the whole screen; its answer is traffic each way.
  ws.send(Buffer.from([3, 0, 0, 0, 0, 0, init.readUInt16BE(0) >> 8, init.readUInt16BE(0) & 255, init.readUInt16BE(2) >> 8, init.readUInt16BE(2) & 255]));
  assert.equal((await read(1))[0], 0, 'a FramebufferUpdate');
  return { ws, closed };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`admin API over HTTP, ${store}`, () => {
    let db: TestDatabase | null = null;
    let node: RunningServer;
    let vnc: DemoVncServer;
    let vncPort = 0;
    let env: Record<string, string>;
    let projectId = '';
    let bulkProject = '';
    let token = '';
    let rootId = '';
    let ak = '';
    let sk = '';
    const t0 = Date.now();
    const secrets: string[] = [ADMIN_PASSWORD, VNC_PASSWORD];
    const ids: Record<string, string> = {};

    /** A call with the administrator's IAM token, or with the headers given instead. */
    const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<FetchReply> =>
      fetchJson(node.apiUrl, headers ? '' : token, method, path, body, headers ?? {});
    const ok = async (method: string, path: string, body?: unknown, status = 200): Promise<any> => {
      const r = await call(method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${r.text.slice(0, 500)}`);
      return r.json;
    };
    const serverIds = async (query: string): Promise<string[]> => (await ok('GET', `/admin/v1/servers?${query}`)).servers.map((s: { id: string }) => s.id);

    before(async () => {
      vnc = new DemoVncServer({ name: 'desk', width: 160, height: 100 });
      ({ port: vncPort } = await vnc.listen(0, '127.0.0.1'));
      env = {
        ECS_CONSOLE_DATA_DIR: tempDir('ecs-admin-'), ECS_CONSOLE_LOG_LEVEL: 'warn', ECS_CONSOLE_SESSION_HEARTBEAT_SECONDS: '1',
        ECS_CONSOLE_API_RATE_LIMIT_PER_CREDENTIAL: '0', ECS_CONSOLE_API_RATE_LIMIT_PER_ADDRESS: '0',
      };
      if (store === 'postgres') {
        db = await createTestDatabase();
        env = { ...env, ECS_CONSOLE_STORE: db.url, ECS_CONSOLE_MASTER_KEY: randomBytes(32).toString('base64') };
      }
      const cli = async (args: string[], stdin?: string): Promise<string> => {
        const r = await runCli(args, env, stdin);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      await cli(['init']);
      projectId = JSON.parse(await cli(['project', 'create', '--name', 'ops', '--domain', 'acme', '--json'])).id;
      await cli(['user', 'create', '--domain', 'acme', '--name', 'root', '--admin', '--password-stdin'], `${ADMIN_PASSWORD}\n`);
      node = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], env);
    });

    after(async () => {
      node?.child.kill('SIGTERM');
      await node?.exited;
      await vnc?.close();
      await db?.drop();
    });

    test('an IAM token from /v3/auth/tokens; only a domain administrator is let in', async () => {
      const r = await fetch(`${node.apiUrl}/v3/auth/tokens`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'root', password: ADMIN_PASSWORD, domain: { name: 'acme' } } } }, scope: { project: { id: projectId } } } }),
      });
      const body = await r.json() as { token: { user: { id: string; domain: { id: string } } } };
      assert.equal(r.status, 201, JSON.stringify(body));
      token = r.headers.get('x-subject-token')!;
      rootId = body.token.user.id;
      secrets.push(token);
      const domainId = body.token.user.domain.id;
      // The rest of the set-up through the IAM API: a project for the bulk sync, a key, a user who is not an administrator.
      bulkProject = (await ok('POST', '/v3/projects', { project: { name: 'bulk', domain_id: domainId } }, 201)).project.id;
      const key = (await ok('POST', '/v3.0/OS-CREDENTIAL/credentials', { credential: { user_id: rootId } }, 201)).credential;
      ({ access: ak, secret: sk } = key);
      secrets.push(sk);
      await ok('POST', '/v3/users', { user: { name: 'dev', domain_id: domainId, password: 'D3v-passw0rd' } }, 201);
      secrets.push('D3v-passw0rd');

      const none = await call('GET', '/admin/v1/servers', undefined, {});
      assert.equal(none.status, 401);
      assert.equal(none.json.error.title, 'Unauthorized');
      const devLogin = await fetch(`${node.apiUrl}/v3/auth/tokens`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: 'dev', password: 'D3v-passw0rd', domain: { name: 'acme' } } } }, scope: { project: { id: projectId } } } }),
      });
      assert.equal(devLogin.status, 201);
      const dev = await call('GET', '/admin/v1/servers', undefined, { 'x-auth-token': devLogin.headers.get('x-subject-token')! });
      assert.equal(dev.status, 403);
      assert.equal(dev.json.error.title, 'Forbidden');
      // The access key, signed: the same administrator.
      const url = new URL(`${node.apiUrl}/admin/v1/servers`);
      const signed = await call('GET', url.pathname, undefined, signature('GET', url, '', ak, sk));
      assert.equal(signed.status, 200, signed.text);
    });

    test('servers: create, read, list by each filter and paged by marker, change one field at a time, delete', async () => {
      const create = async (name: string, extra: Record<string, unknown>, console: Record<string, unknown> = { host: '127.0.0.1', port: vncPort }): Promise<string> => {
        const s = (await ok('POST', '/admin/v1/servers', { server: { project_id: projectId, name, ...extra, console } }, 201)).server;
        assert.equal(s.name, name);
        return (ids[name] = s.id as string);
      };
      await create('desk', { availability_zone: 'az1' });
      await create('web-2', { availability_zone: 'az2' }, { host: '10.0.0.2', port: 5902, auth: 'vnc-password', password: VNC_PASSWORD });
      await create('db-1', { availability_zone: 'az2', status: 'SHUTOFF' });
      const given = randomUUID();
      assert.equal(await create('tmp', { id: given }), given);
      assert.equal((await call('POST', '/admin/v1/servers', { server: { id: given, project_id: projectId, name: 'again', console: { host: '127.0.0.1', port: 1 } } })).status, 409);
      const bad = await call('POST', '/admin/v1/servers', { server: { project_id: projectId, name: 'x', console: { host: '127.0.0.1', port: 'many' } } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error_code, 'IAM.0011');

      const shown = await call('GET', `/admin/v1/servers/${ids['web-2']}`);
      assert.equal(shown.status, 200);
      assert.deepEqual([shown.json.server.project_id, shown.json.server.availability_zone, shown.json.server.status], [projectId, 'az2', 'ACTIVE']);
      assert.deepEqual([shown.json.server.console.host, shown.json.server.console.port, shown.json.server.console.auth, shown.json.server.console.password_set], ['10.0.0.2', 5902, 'vnc-password', true]);
      assert.ok(!shown.text.includes(VNC_PASSWORD), 'the VNC password is never answered');

      const all = [ids['desk'], ids['web-2'], ids['db-1'], ids['tmp']].sort();
      assert.deepEqual((await serverIds(`project_id=${projectId}`)).sort(), all);
      assert.deepEqual(await serverIds(`project_id=${bulkProject}`), []);
      assert.deepEqual(await serverIds('status=SHUTOFF'), [ids['db-1']]);
      assert.deepEqual(await serverIds('name=web-2'), [ids['web-2']]);
      assert.deepEqual((await serverIds('availability_zone=az2')).sort(), [ids['web-2'], ids['db-1']].sort());
      assert.deepEqual(await serverIds(`project_id=${projectId}&availability_zone=az1&status=ACTIVE&name=desk`), [ids['desk']]);
      // Pages of one, each naming the next by its last id, until next_marker is null.
      const walked: string[] = [];
      let marker: string | null = null;
      for (let i = 0; i < 10; i++) {
        const page: { servers: Array<{ id: string }>; count: number; next_marker: string | null } = await ok('GET', `/admin/v1/servers?project_id=${projectId}&limit=1${marker ? `&marker=${marker}` : ''}`);
        assert.equal(page.count, 4);
        walked.push(...page.servers.map((s) => s.id));
        marker = page.next_marker;
        if (marker === null) break;
      }
      assert.deepEqual(walked.sort(), all, 'the pages hold every server once');
      assert.equal((await call('GET', '/admin/v1/servers?limit=0')).status, 400);
      assert.equal((await call('GET', `/admin/v1/servers?project_id=${'f'.repeat(32)}`)).status, 404);

      // The password alone: the rest of the target and its revision stay.
      const before = (await ok('GET', `/admin/v1/servers/${ids['web-2']}`)).server;
      const pw = (await ok('PATCH', `/admin/v1/servers/${ids['web-2']}`, { server: { console: { password: 'other-pw' } } })).server;
      secrets.push('other-pw');
      assert.deepEqual([pw.console.host, pw.console.port, pw.console.auth, pw.console_revision, pw.status], ['10.0.0.2', 5902, 'vnc-password', before.console_revision, 'ACTIVE']);
      // The host alone: a new revision; port, auth and password stay.
      const host = (await ok('PATCH', `/admin/v1/servers/${ids['web-2']}`, { server: { console: { host: '10.0.0.3' } } })).server;
      assert.deepEqual([host.console.host, host.console.port, host.console.auth, host.console.password_set, host.console_revision], ['10.0.0.3', 5902, 'vnc-password', true, before.console_revision + 1]);
      // The status alone.
      const st = (await ok('PATCH', `/admin/v1/servers/${ids['web-2']}`, { server: { status: 'SHUTOFF' } })).server;
      assert.deepEqual([st.status, st.console.host, st.name], ['SHUTOFF', '10.0.0.3', 'web-2']);
      assert.equal((await call('PATCH', `/admin/v1/servers/${ids['web-2']}`, { server: {} })).status, 400);

      assert.equal((await call('DELETE', `/admin/v1/servers/${ids['tmp']}`)).status, 204);
      assert.equal((await call('GET', `/admin/v1/servers/${ids['tmp']}`)).status, 404);
      assert.equal((await call('DELETE', `/admin/v1/servers/${ids['tmp']}`)).status, 404);
    });

    test('bulk sync of 5,000 servers, again (nothing changes, nothing is revoked), a dry run that changes nothing', async (t) => {
      const n = 5000;
      const bulk = Array.from({ length: n }, (_, i) => ({ id: randomUUID(), name: `vm-${i}`, console: { host: `10.1.${i >> 8}.${i & 255}`, port: 5900 } }));
      const path = `/admin/v1/projects/${bulkProject}/servers`;
      const started = Date.now();
      const first = (await ok('PUT', path, { servers: bulk })).sync;
      const firstMs = Date.now() - started;
      assert.deepEqual([first.dry_run, first.created.length, first.updated.length, first.deleted.length, first.revoked.length], [false, n, 0, 0, 0]);
      const second = (await ok('PUT', path, { servers: bulk })).sync;
      t.diagnostic(`${store}: 5,000 servers over HTTP: first sync ${firstMs} ms, the same list again ${Date.now() - started - firstMs} ms`);
      assert.deepEqual([second.created.length, second.updated.length, second.deleted.length, second.revoked.length, second.unchanged], [0, 0, 0, 0, n]);

      // The plan of a change: one gone, one moved, one renamed, one new.
      const fresh = randomUUID();
      const next = bulk.slice(1).map((s, i) => (i === 0 ? { ...s, console: { host: '10.9.9.9', port: 5900 } } : i === 1 ? { ...s, name: 'renamed' } : s));
      next.push({ id: fresh, name: 'fresh', console: { host: '10.2.0.1', port: 5900 } });
      const plan = (await ok('PUT', `${path}?dry_run=true`, { servers: next })).sync;
      assert.equal(plan.dry_run, true);
      assert.deepEqual(plan.created, [fresh]);
      assert.deepEqual(plan.deleted, [bulk[0]!.id]);
      assert.deepEqual(plan.updated.sort((a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1)),
        [{ id: bulk[1]!.id, changed: ['console'] }, { id: bulk[2]!.id, changed: ['name'] }].sort((a, b) => (a.id < b.id ? -1 : 1)));
      assert.deepEqual(plan.revoked.map((r: { id: string; reason: string }) => `${r.id} ${r.reason}`).sort(), [`${bulk[0]!.id} server-deleted`, `${bulk[1]!.id} console-changed`].sort());
      assert.equal(plan.unchanged, n - 3);
      // Nothing changed.
      assert.equal((await ok('GET', `/admin/v1/servers?project_id=${bulkProject}&limit=1`)).count, n);
      assert.equal((await call('GET', `/admin/v1/servers/${fresh}`)).status, 404);
      assert.equal((await ok('GET', `/admin/v1/servers/${bulk[0]!.id}`)).server.name, 'vm-0');
      assert.equal((await ok('GET', `/admin/v1/servers/${bulk[1]!.id}`)).server.console.host, bulk[1]!.console.host);
      assert.equal((await ok('GET', `/admin/v1/servers/${bulk[2]!.id}`)).server.name, 'vm-2');
      const again = (await ok('PUT', path, { servers: bulk })).sync;
      assert.equal(again.unchanged, n, 'the dry run left the project as it was');

      // One zone of the project: the project's other servers are not the zone's.
      const zone = [{ id: randomUUID(), name: 'z-1', console: { host: '10.3.0.1', port: 5900 } }];
      const z = (await ok('PUT', `/admin/v1/projects/${bulkProject}/availability-zones/az-x/servers`, { servers: zone })).sync;
      assert.deepEqual([z.availability_zone, z.created, z.deleted], ['az-x', [zone[0]!.id], []]);
      assert.deepEqual(await serverIds(`project_id=${bulkProject}&availability_zone=az-x`), [zone[0]!.id]);
      const badItem = await call('PUT', path, { servers: [{ id: 'nope', name: 'x', console: {} }] });
      assert.equal(badItem.status, 400);
      assert.equal(badItem.json.error_code, 'IAM.0011');
    });

    test('sessions: a console opened through the proxy is listed; one ended with a reason, then all of a server\'s', async () => {
      const issue = async (): Promise<string> => {
        const r = await ok('POST', `/v1/${projectId}/cloudservers/${ids['desk']}/remote_console`, { remote_console: { type: 'novnc', protocol: 'vnc' } });
        const url = r.remote_console.url as string;
        secrets.push(new URL(url).searchParams.get('token')!);
        return url;
      };
      const firstUrl = await issue();
      const one = await openConsole(firstUrl);
      // The list of every proxy node's sessions (rows are written as sessions start).
      let rows: any[] = [];
      for (let i = 0; i < 50 && rows.length === 0; i++) {
        rows = (await ok('GET', `/admin/v1/sessions?server_id=${ids['desk']}`)).sessions;
        if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(rows.length, 1);
      const row = rows[0];
      assert.deepEqual([row.server_id, row.server_name, row.project_id, row.user_id, row.client_address], [ids['desk'], 'desk', projectId, rootId, '127.0.0.1']);
      assert.ok(row.credential, 'the credential the URL was issued to');
      assert.ok(row.node_id);
      assert.ok(Date.parse(row.started_at) >= t0);
      assert.equal(typeof row.bytes_to_client, 'number');
      assert.equal(typeof row.bytes_to_backend, 'number');
      assert.deepEqual((await ok('GET', `/admin/v1/sessions?project_id=${projectId}`)).sessions.map((s: { id: string }) => s.id), [row.id]);
      assert.deepEqual((await ok('GET', `/admin/v1/sessions?project_id=${bulkProject}`)).sessions, []);

      const reason = 'Maintenance at 12:00, back soon';
      const kill = await ok('DELETE', `/admin/v1/sessions/${row.id}?reason=${encodeURIComponent(reason)}`, undefined, 202);
      assert.deepEqual([kill.server_id, kill.session_id], [ids['desk'], row.id]);
      const ended = await one.closed;
      assert.equal(ended.code, KILLED);
      assert.match(ended.reason, /Maintenance at 12:00, back soon/);
      // Its node removes its row after the close (the browser may hear of the close first).
      for (let i = 0; i < 50 && (await ok('GET', `/admin/v1/sessions?server_id=${ids['desk']}`)).sessions.length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await call('DELETE', `/admin/v1/sessions/${row.id}`)).status, 404, 'gone');

      // A used link is refused before the upgrade (an audit record with outcome refused).
      const reuse = new WebSocket(`ws://${new URL(firstUrl).host}/websockify?token=${new URL(firstUrl).searchParams.get('token')}`, ['binary'], { origin: new URL(firstUrl).origin });
      const status = await new Promise<number>((resolve) => {
        reuse.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        reuse.once('open', () => resolve(101));
        reuse.once('error', () => undefined);
      });
      assert.equal(status, 401);

      const two = await Promise.all([openConsole(await issue()), openConsole(await issue())]);
      const killAll = await ok('DELETE', `/admin/v1/servers/${ids['desk']}/sessions?reason=${encodeURIComponent('Host reboot')}`, undefined, 202);
      assert.equal(killAll.server_id, ids['desk']);
      for (const c of two) {
        const e = await c.closed;
        assert.equal(e.code, KILLED);
        assert.match(e.reason, /Host reboot/);
      }
      assert.equal((await call('DELETE', `/admin/v1/sessions/x?reason=${'r'.repeat(81)}`)).status, 400);
    });

    test('audit: search by each filter, newest first, paged; CSV and JSON exports of the same records; no secret anywhere', async () => {
      // An action signed with the access key, so that a search by access key finds it.
      const url = new URL(`${node.apiUrl}/admin/v1/servers/${ids['db-1']}`);
      const body = JSON.stringify({ server: { name: 'db-renamed' } });
      const signed = await fetch(url, { method: 'PATCH', headers: { 'content-type': 'application/json', ...signature('PATCH', url, body, ak, sk) }, body });
      assert.equal(signed.status, 200, await signed.text());

      type Event = { id: number; at: string; kind: string; outcome: string | null; project_id: string | null; server_id: string | null; actor_user_id: string | null; actor_credential: string | null; client_address: string | null; request_id: string | null; detail: Record<string, unknown> };
      const search = async (q: string): Promise<Event[]> => (await ok('GET', `/admin/v1/audit?${q}`)).events;

      // "Who opened server desk's console last week."
      const week = new Date(Date.now() - 7 * 86_400_000).toISOString();
      const opened = await search(`server_id=${ids['desk']}&kind=connected&from=${week}`);
      assert.equal(opened.length, 3);
      assert.ok(opened.every((e, i) => i === 0 || e.id < opened[i - 1]!.id), 'newest first');
      assert.ok(opened.every((e) => e.actor_user_id === rootId && e.client_address === '127.0.0.1' && e.server_id === ids['desk']));
      const closed = await search(`server_id=${ids['desk']}&kind=closed`);
      assert.equal(closed.length, 3);
      assert.ok(closed.every((e) => e.detail['reason'] === 'killed' && e.detail['closedBy'] === `user:${rootId}` && Number(e.detail['durationMs']) >= 0 && Number(e.detail['bytesToClient']) > 0 && Number(e.detail['bytesToBackend']) > 0), JSON.stringify(closed.map((e) => e.detail)));
      const issued = await search(`server_id=${ids['desk']}&kind=issued`);
      assert.equal(issued.length, 3);
      assert.ok(issued.every((e) => /^[0-9a-f]{32}$/.test(e.request_id ?? '') && e.client_address === '127.0.0.1' && e.actor_credential === `user:${rootId}`));

      const byProject = await search(`project_id=${projectId}&limit=1000`);
      assert.ok(byProject.length >= 10 && byProject.every((e) => e.project_id === projectId));
      const ops = await search(`project_id=${projectId}&kind=operator&limit=1000`);
      const actions = new Set(ops.map((e) => e.detail['action']));
      for (const a of ['server-create', 'server-update', 'server-delete', 'session-kill']) assert.ok(actions.has(a), a);
      assert.ok(ops.every((e) => e.detail['door'] === 'api' && /^[0-9a-f]{32}$/.test(e.request_id ?? '')));
      const syncs = await search(`project_id=${bulkProject}&kind=operator`);
      assert.ok(syncs.some((e) => e.detail['action'] === 'servers-sync') && syncs.some((e) => e.detail['action'] === 'servers-sync-plan'));
      const byUser = await search(`user_id=${rootId}&limit=1000`);
      assert.ok(byUser.length >= 10 && byUser.every((e) => e.actor_user_id === rootId));
      const byKey = await search(`access_key=${ak}`);
      assert.deepEqual(byKey.map((e) => [e.kind, e.detail['action'], e.server_id]), [['operator', 'server-update', ids['db-1']]]);
      assert.ok((await search('client_address=127.0.0.1&limit=1000')).length >= 10);
      assert.deepEqual(await search('client_address=192.0.2.1'), []);
      const refused = await search('outcome=refused');
      assert.ok(refused.some((e) => e.kind === 'rejected' && e.detail['reason'] === 'token-used'));
      assert.ok(refused.every((e) => e.outcome === 'refused'));
      // The domain's records without a project: a user and a key created through the IAM API.
      assert.ok((await search('kind=user-created')).some((e) => e.actor_user_id === rootId));
      assert.ok((await search('kind=ak-created')).some((e) => e.actor_user_id === rootId));
      assert.deepEqual(await search(`from=${new Date(Date.now() + 3_600_000).toISOString()}`), []);
      assert.deepEqual(await search(`to=${new Date(t0 - 60_000).toISOString()}`), []);
      assert.equal((await call('GET', '/admin/v1/audit?from=yesterday')).status, 400);

      // Pages of 3 by marker: every record once, newest first.
      const everything = await search('limit=1000');
      const paged: number[] = [];
      let marker: string | null = null;
      for (let i = 0; i < 1000; i++) {
        const page: { events: Event[]; next_marker: string | null } = await ok('GET', `/admin/v1/audit?limit=50${marker ? `&marker=${marker}` : ''}`);
        paged.push(...page.events.map((e) => e.id));
        marker = page.next_marker;
        if (marker === null) break;
      }
      assert.deepEqual(paged.slice(0, everything.length), everything.map((e) => e.id));

      const csv = await fetch(`${node.apiUrl}/admin/v1/audit/export`, { headers: { 'x-auth-token': token } });
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv; charset=utf-8/);
      assert.match(csv.headers.get('content-disposition') ?? '', /attachment; filename="audit\.csv"/);
      const bytes = Buffer.from(await csv.arrayBuffer());
      assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'a byte order mark: spreadsheets read UTF-8');
      const csvText = bytes.subarray(3).toString('utf8');
      const rows = parseCsv(csvText);
      const jsonl = await call('GET', '/admin/v1/audit/export?format=json');
      assert.match(jsonl.type ?? '', /^application\/x-ndjson/);
      const records = jsonl.text.trim().split('\n').map((l) => JSON.parse(l) as Event);
      assert.deepEqual(rows[0], ['id', 'at', 'kind', 'outcome', 'node_id', 'project_id', 'server_id', 'session_id', 'token_ref', 'actor_user_id', 'actor_credential', 'client_address', 'request_id', 'target', 'detail']);
      assert.deepEqual(rows.slice(1).map((r) => Number(r[0])), records.map((e) => e.id), 'the same records in both');
      assert.ok(records.length >= everything.length);
      assert.ok(rows.every((r) => r.length === 15));
      assert.deepEqual((await call('GET', `/admin/v1/audit/export?format=json&server_id=${ids['desk']}&kind=connected`)).text.trim().split('\n').map((l) => JSON.parse(l).id), opened.map((e) => e.id));

      for (const secret of secrets) {
        assert.ok(secret.length >= 8);
        assert.ok(!csvText.includes(secret) && !jsonl.text.includes(secret), 'no token, SK or password in the audit trail');
      }
    });
  });
}
