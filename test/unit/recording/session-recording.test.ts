/**
 * Recording by policy through the real proxy: off by default; on per project or per server; the
 * recorded server bytes replay to the screen the browser saw; keystrokes only when the policy
 * says so; the audit entries name the recording; the API serves it (IAM action, project).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DemoVncServer } from '../../../src/demo/index.js';
import { RecordType, parseRecords } from '../../../src/recording/recording-file.js';
import { ByteReader } from '../../../src/rfb/index.js';
import { FramebufferDecoder } from '../../../src/screenshot/framebuffer-decoder.js';
import { openConsole } from '../../helpers/console-client.js';
import { remoteConsole, sdkClient } from '../../helpers/huawei-sdk.js';
import { signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
let vnc: DemoVncServer;
before(async () => {
  vnc = new DemoVncServer({ name: 'rec', width: 240, height: 160, blinkIntervalMs: 3_600_000 });
  const addr = await vnc.listen(0);
  stack = await startStack({ options: { recordingFlushMs: 100 } });
  s = await seed(stack.app, addr);
});
after(async () => {
  await stack?.stop();
  await vnc.close();
});

/** Opens a console, types `text`, waits until the browser's screen is the server's, closes; returns that screen. */
async function session(text: string): Promise<{ screen: Uint32Array; sessionId: string }> {
  const url = (await remoteConsole(sdkClient(stack.apiUrl, s.ak, s.sk, s.projectId), s.active.id)).remote_console.url;
  const c = await openConsole(url);
  c.client.sendPointer(1, 10, 10);
  c.client.sendPointer(0, 10, 10);
  c.client.sendCutText('clip!');
  c.client.typeText(text);
  const same = (): boolean => {
    const a = c.client.snapshot();
    const b = vnc.console.framebuffer;
    return a.length === b.length && a.every((v, i) => v === b[i]);
  };
  await c.client.waitUntil(() => same() && vnc.console.framebuffer.some((v) => v !== vnc.console.framebuffer[0]), 10_000);
  const screen = c.client.snapshot();
  const sessionId = stack.app.proxy!.registry.values().next().value!.info.id;
  c.ws.close();
  await c.closed;
  for (let i = 0; i < 100 && stack.app.services.recordings.activeCount > 0; i++) await sleep(20);
  return { screen, sessionId };
}

/** The screen at the end of a recording, replayed from its server bytes with the screenshot decoder. */
async function replay(records: ReturnType<typeof parseRecords>): Promise<Uint32Array> {
  const init = records.find((r) => r.type === RecordType.ServerInit)!.payload;
  const reader = new ByteReader({ maxReadLength: 1 << 24 });
  for (const r of records) if (r.type === RecordType.ServerBytes) reader.push(r.payload);
  reader.end();
  const d = new FramebufferDecoder(reader, init.readUInt16BE(0), init.readUInt16BE(2));
  while (reader.bufferedLength > 0) await d.nextUpdate();
  d.close();
  return d.pixels;
}

test('no policy: nothing is recorded', async () => {
  await session('ls\r');
  assert.equal((await stack.app.services.recordings.list({ projectId: s.projectId })).length, 0);
  const dir = join(stack.dataDir, 'recordings');
  assert.ok(!readdirSync(stack.dataDir).includes('recordings') || readdirSync(dir).length === 0);
});

test('project policy on: the recording replays to the screen the browser saw; pointer and clipboard recorded, keystrokes not', async () => {
  await stack.app.services.recordings.setPolicy({ scope: 'project', scopeId: s.projectId, enabled: true });
  const { screen, sessionId } = await session('echo secret-pw\r');
  const [rec] = await stack.app.services.recordings.list({ projectId: s.projectId });
  assert.ok(rec);
  assert.equal(rec.sessionId, sessionId);
  assert.equal(rec.keystrokes, false);
  assert.ok(rec.endedAt !== null && rec.chunks > 0 && rec.bytes > 0);
  const read = await stack.app.services.recordings.read(rec);
  assert.equal(read.integrity, 'verified');
  const records = parseRecords(read.records);
  assert.ok(records.some((r) => r.type === RecordType.Pointer));
  assert.ok(records.some((r) => r.type === RecordType.ClientCutText && r.payload.includes('clip!')));
  assert.ok(!records.some((r) => r.type === RecordType.Key), 'keystrokes recorded without the policy saying so');
  assert.equal(records[records.length - 1]!.type, RecordType.End);
  assert.deepEqual(Array.from(await replay(records)), Array.from(screen));
  // Sealed at rest: the typed text's bytes are not in the file.
  assert.ok(!readFileSync(join(stack.dataDir, 'recordings', rec.file)).includes('secret'));
  // The session's audit entries name the recording.
  const audit = await stack.app.services.stores.audit.listAudit({ serverId: s.active.id });
  const mine = audit.filter((e) => e.sessionId === sessionId);
  assert.deepEqual(mine.map((e) => [e.kind, e.detail['recording']]).sort(), [['closed', rec.id], ['connected', rec.id]]);
});

test('a server policy wins: keystrokes recorded when it says so; off for one server while its project is on', async () => {
  const rs = stack.app.services.recordings;
  await rs.setPolicy({ scope: 'server', scopeId: s.active.id, enabled: true, keystrokes: true });
  const { sessionId } = await session('id\r');
  const [rec] = await rs.list({ sessionId });
  assert.equal(rec?.keystrokes, true);
  const keys = parseRecords((await rs.read(rec!)).records).filter((r) => r.type === RecordType.Key);
  assert.deepEqual(keys.filter((k) => k.payload[1] === 1).map((k) => k.payload.readUInt32BE(4)), [...'id\r'].map((c) => c.charCodeAt(0)));
  await rs.setPolicy({ scope: 'server', scopeId: s.active.id, enabled: false });
  const off = await session('x');
  assert.deepEqual(await rs.list({ sessionId: off.sessionId }), []);
  await rs.removePolicy('server', s.active.id);
});

test('the API: list, one, data (ecs:cloudServers:getRecording); another project\'s is 404; a key without the action 403', async () => {
  const o = { ak: s.ak, sk: s.sk, projectId: s.projectId };
  const list = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/recordings?server_id=${s.active.id}`, '', o);
  assert.equal(list.status, 200, list.text);
  const id = list.json.recordings[0].id as string;
  assert.equal(list.json.recordings[0].server_id, s.active.id);
  const one = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/recordings/${id}`, '', o);
  assert.equal(one.json.recording.id, id);
  const data = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/recordings/${id}/data`, '', o);
  assert.equal(data.status, 200);
  assert.equal(data.headers['x-recording-integrity'], 'verified');
  assert.equal(parseRecords(data.body)[0]!.type, RecordType.ServerInit);
  const other = await signedHttp('GET', `${stack.apiUrl}/v1/${s.otherProjectId}/recordings/${id}`, '', { ak: s.otherAk, sk: s.otherSk, projectId: s.otherProjectId });
  assert.equal(other.status, 404);
  assert.equal(other.json.error.code, 'Ecs.0404');
  const limited = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/recordings/${id}/data`, '', { ak: s.limitedAk, sk: s.limitedSk, projectId: s.projectId });
  assert.equal(limited.status, 403);
  assert.match(limited.json.error.message, /ecs:cloudServers:getRecording/);
  const bad = await signedHttp('GET', `${stack.apiUrl}/v1/${s.projectId}/recordings?limit=abc`, '', o);
  assert.equal(bad.status, 400);
  const page = await signedHttp('GET', `${stack.apiUrl}/playback.html`, '', o);
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
});

test('purge: past retention, then the oldest over the project quota; files go with their rows', async () => {
  const rs = stack.app.services.recordings;
  const before = await rs.list({ projectId: s.projectId });
  assert.ok(before.length >= 2);
  const total = before.reduce((n, r) => n + r.bytes, 0);
  await rs.setPolicy({ scope: 'project', scopeId: s.projectId, enabled: true, quotaBytes: total - 1 });
  assert.equal(await rs.purge(), 1);
  const after1 = await rs.list({ projectId: s.projectId });
  assert.deepEqual(after1.map((r) => r.id), before.slice(0, -1).map((r) => r.id), 'the oldest went first');
  assert.ok(!readdirSync(join(stack.dataDir, 'recordings')).includes(before[before.length - 1]!.file));
  await rs.setPolicy({ scope: 'project', scopeId: s.projectId, enabled: false });
});
