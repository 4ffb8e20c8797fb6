/** GET .../screenshot (our extension): the demo server's own framebuffer, pixel for pixel; IAM, limits, errors. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DemoVncServer } from '../../../src/demo/index.js';
import { signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, type Seed, type Stack } from '../../helpers/stack.js';

let stack: Stack;
let s: Seed;
let vnc: DemoVncServer;
before(async () => {
  // No blinking: the screen stays what it was when the screenshot was taken.
  vnc = new DemoVncServer({ name: 'shot', password: 'pw-shot1', width: 200, height: 120, blinkIntervalMs: 3_600_000 });
  const addr = await vnc.listen(0);
  stack = await startStack({ options: { screenshotPerServerPerMinute: 3 } });
  s = await seed(stack.app, { ...addr, auth: 'vnc-password', password: 'pw-shot1' });
  for (const ch of 'hello') vnc.console.handleKey(ch.charCodeAt(0), true);
});
after(async () => {
  await stack.stop();
  await vnc.close();
});

const url = (serverId: string, q = ''): string => `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${serverId}/screenshot${q}`;

test('PNG: exactly the demo server\'s framebuffer; JPEG: close to it', async () => {
  const r = await signedHttp('GET', url(s.active.id), '', { ak: s.ak, sk: s.sk, projectId: s.projectId });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['content-type'], 'image/png');
  const png = PNG.sync.read(r.body);
  assert.equal(png.width, 200);
  assert.equal(png.height, 120);
  const fb = vnc.console.framebuffer;
  let differing = 0;
  for (let i = 0; i < fb.length; i++) {
    const rgb = (png.data[i * 4]! << 16) | (png.data[i * 4 + 1]! << 8) | png.data[i * 4 + 2]!;
    if (rgb !== fb[i]) differing++;
  }
  assert.equal(differing, 0);
  // The typed text is on the screen (not a blank frame that happens to match a blank console).
  assert.ok(new Set(fb).size > 1);

  const j = await signedHttp('GET', url(s.active.id, '?format=jpeg'), '', { ak: s.ak, sk: s.sk, projectId: s.projectId });
  assert.equal(j.status, 200, j.text);
  assert.equal(j.headers['content-type'], 'image/jpeg');
  const img = jpeg.decode(j.body, { useTArray: true });
  let err = 0;
  for (let i = 0; i < fb.length; i++) {
    const p = fb[i]!;
    err += Math.abs(img.data[i * 4]! - ((p >> 16) & 0xff)) + Math.abs(img.data[i * 4 + 1]! - ((p >> 8) & 0xff)) + Math.abs(img.data[i * 4 + 2]! - (p & 0xff));
  }
  assert.ok(err / (fb.length * 3) < 12, `mean error ${err / (fb.length * 3)}`);
});

test('errors: bad format, other project\'s or stopped server, missing action, unreachable console', async () => {
  const o = { ak: s.ak, sk: s.sk, projectId: s.projectId };
  const bad = await signedHttp('GET', url(s.active.id, '?format=gif'), '', o);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'Ecs.0005');
  assert.equal((await signedHttp('GET', url(s.foreign.id), '', o)).json.error.code, 'Ecs.0114');
  const stopped = await signedHttp('GET', url(s.shutoff.id), '', o);
  assert.equal(stopped.status, 400);
  assert.equal(stopped.json.error.code, 'Ecs.0100');
  const limited = await signedHttp('GET', url(s.active.id), '', { ak: s.limitedAk, sk: s.limitedSk, projectId: s.projectId });
  assert.equal(limited.status, 403);
  assert.equal(limited.json.error.code, 'Pdp.0001');
  assert.match(limited.json.error.message, /ecs:cloudServers:screenshot/);
  const gone = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'gone', console: { host: '127.0.0.1', port: 1, auth: 'none', password: null } });
  const r = await signedHttp('GET', url(gone.id), '', o);
  assert.equal(r.status, 502);
  assert.equal(r.json.error.code, 'Ecs.0502');
  assert.doesNotMatch(r.text, /127\.0\.0\.1|ECONNREFUSED/);
});

test('per-server rate limit: 429 APIGW.0308 with Retry-After; other servers unaffected', async () => {
  const other = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'web-02', console: { host: '127.0.0.1', port: (s.active.console as { port: number }).port, auth: 'vnc-password', password: 'pw-shot1' } });
  const o = { ak: s.ak, sk: s.sk, projectId: s.projectId };
  // The first test took 2 of web-01's 3.
  assert.equal((await signedHttp('GET', url(s.active.id), '', o)).status, 200);
  const r = await signedHttp('GET', url(s.active.id), '', o);
  assert.equal(r.status, 429);
  assert.equal(r.json.error_code, 'APIGW.0308');
  assert.ok(Number(r.headers['retry-after']) >= 1);
  assert.equal((await signedHttp('GET', url(other.id), '', o)).status, 200);
});

test('every screenshot call is audited: who, which server, from where, what it came to; never the image', async () => {
  const events = await stack.app.services.stores.audit.listAudit({ kind: 'screenshot', limit: 100 });
  // Earlier tests: PNG and JPEG; a bad format, another project's server, a stopped one, a key
  // without the action, an unreachable console; one more, one rate-limited, another server's.
  const ok = events.filter((e) => e.outcome === 'ok');
  const refused = events.filter((e) => e.outcome === 'refused');
  assert.equal(ok.length, 4);
  assert.deepEqual(refused.map((e) => e.detail['error']).sort(), ['BACKEND_UNREACHABLE', 'FORBIDDEN', 'RATE_LIMITED', 'SERVER_NOT_ACTIVE', 'SERVER_NOT_FOUND', 'VALIDATION'].sort());
  for (const e of events) {
    assert.equal(e.projectId, s.projectId);
    assert.equal(e.clientAddress, '127.0.0.1');
    assert.match(String(e.actorCredential), /^ak:/);
    assert.ok(e.requestId);
    assert.ok(JSON.stringify(e.detail).length < 200, 'no image in the audit trail');
  }
  const first = ok.find((e) => e.serverId === s.active.id && e.detail['format'] === 'png')!;
  assert.equal(first.actorCredential, `ak:${s.ak}`);
  assert.deepEqual({ w: first.detail['width'], h: first.detail['height'] }, { w: 200, h: 120 });
  assert.equal(refused.find((e) => e.detail['error'] === 'FORBIDDEN')?.actorCredential, `ak:${s.limitedAk}`);
});

test('no image leaves without its audit entry: an audit store that refuses the write answers 500, with no picture', async () => {
  // The store refuses audit rows (a trigger, through a second connection to the same database).
  const db = new Database(stack.config.store.slice('sqlite:'.length));
  db.exec("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit store down'); END;");
  try {
    const other = await stack.app.services.inventory.addServer({ projectId: s.projectId, name: 'web-03', console: { host: '127.0.0.1', port: (s.active.console as { port: number }).port, auth: 'vnc-password', password: 'pw-shot1' } });
    const r = await signedHttp('GET', url(other.id), '', { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(r.status, 500);
    assert.notEqual(r.headers['content-type'], 'image/png');
    assert.equal(r.body.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), false, 'no PNG in the answer');
  } finally {
    db.exec('DROP TRIGGER refuse_audit');
    db.close();
  }
});
