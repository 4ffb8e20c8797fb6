/**
 * One log line per remote_console call: the access line carries the `issued` audit event; a client
 * gone before its answer still leaves the event in the log, on a line of its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { loadConfig } from '../../../src/config/config.js';
import { openStores } from '../../../src/app.js';
import type { AuditEvent } from '../../../src/audit/types.js';
import { signRequest } from '../../../src/identity/sdk-hmac-signer.js';
import { signedHttp } from '../../helpers/signed-fetch.js';
import { seed, startStack, tempDir } from '../../helpers/stack.js';

const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';

type Line = Record<string, unknown>;

test('a remote_console call writes one line: the access line, with the issued event on it', async () => {
  const stack = await startStack();
  try {
    const s = await seed(stack.app, { host: '127.0.0.1', port: 5900 });
    const url = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;
    const r = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(r.status, 200);
    const reqId = String(r.headers['x-request-id']);
    const [row] = await stack.app.services.stores.audit.listAudit({ kind: 'issued', limit: 10 });
    assert.ok(row);
    const lines = stack.logs.lines.map((l) => JSON.parse(l) as Line).filter((l) => l['reqId'] === reqId || l['tokenRef'] === row.tokenRef);
    assert.equal(lines.length, 1, `one line for the call: ${JSON.stringify(lines)}`);
    const line = lines[0]!;
    assert.equal(line['msg'], 'request');
    assert.equal(line['level'], 'info');
    assert.equal(line['reqId'], reqId);
    assert.equal(line['status'], 200);
    assert.equal(line['method'], 'POST');
    assert.equal(line['path'], `/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`);
    assert.equal(typeof line['ms'], 'number');
    assert.equal(line['remote'], '127.0.0.1');
    // The access line's credential id wins over the event's credential kind (the id names it).
    assert.equal(line['credential'], `ak:${s.ak}`);
    assert.equal(line['audit'], 'issued');
    assert.equal(line['tokenRef'], row.tokenRef);
    assert.equal(line['project'], s.projectId);
    assert.equal(line['server'], s.active.id);
    assert.equal(line['userId'], row.detail['userId']);
    assert.equal(line['expiresAt'], row.detail['expiresAt']);
    assert.equal(row.detail['credential'], 'aksk', 'the audit record keeps the credential kind');
    assert.ok(!stack.logs.text.includes('"msg":"audit issued"'));

    // Calls that issue nothing keep the plain access line.
    const refused = await signedHttp('POST', `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.shutoff.id}/remote_console`, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(refused.status, 400);
    const refusedLine = stack.logs.lines.map((l) => JSON.parse(l) as Line).find((l) => l['reqId'] === refused.headers['x-request-id'] && l['msg'] === 'request');
    assert.ok(refusedLine);
    assert.equal(refusedLine['audit'], undefined);
  } finally {
    await stack.stop();
  }
});

test('a client gone before its answer: the issued event gets a line of its own, once', async () => {
  const dataDir = tempDir();
  const stores = await openStores(loadConfig({ flags: { dataDir }, env: {} }));
  // The audit row's write waits until the client has gone (the event's fields are handed over first).
  let reached!: () => void;
  const atWrite = new Promise<void>((r) => (reached = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const audit = stores.audit;
  const appendAudit = audit.appendAudit.bind(audit);
  audit.appendAudit = async (e: AuditEvent): Promise<void> => {
    if (e.kind === 'issued') {
      reached();
      await gate;
    }
    return appendAudit(e);
  };
  const stack = await startStack({ dataDir, overrides: { stores } });
  try {
    const s = await seed(stack.app, { host: '127.0.0.1', port: 5900 });
    const api = new URL(stack.apiUrl);
    const url = new URL(`${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`);
    const headers = signRequest({ method: 'POST', url, headers: { 'content-type': 'application/json', 'x-project-id': s.projectId }, body: BODY }, s.ak, s.sk, Date.now());
    const req = request({ method: 'POST', host: api.hostname, port: api.port, path: url.pathname, headers: { ...headers, 'content-length': String(BODY.length) }, agent: false });
    req.on('error', () => {});
    req.end(BODY);
    await atWrite;
    req.destroy();
    const own = (): Line[] => stack.logs.lines.map((l) => JSON.parse(l) as Line).filter((l) => l['audit'] === 'issued');
    for (let i = 0; i < 200 && own().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    release();
    // The call completes (its answer goes nowhere) and the row is written.
    for (let i = 0; i < 200; i++) {
      if ((await stack.app.services.stores.audit.listAudit({ kind: 'issued', limit: 10 })).length > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 100));
    const [row] = await stack.app.services.stores.audit.listAudit({ kind: 'issued', limit: 10 });
    assert.ok(row, 'the audit row is written');
    const lines = own();
    assert.equal(lines.length, 1, `one line holds the event: ${JSON.stringify(lines)}`);
    assert.equal(lines[0]!['msg'], 'audit issued');
    assert.equal(lines[0]!['tokenRef'], row.tokenRef);
    assert.equal(lines[0]!['reqId'], row.requestId);
  } finally {
    release();
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
