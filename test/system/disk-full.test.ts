/**
 * Disk full under the SQLite file: a real small filesystem (tmpfs, mounted by the test; needs
 * root, as CI has) filled up. API calls fail with a clear 500, consoles with 503; nothing committed
 * is lost; freeing space recovers without a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openWs, wsUrlOf } from '../helpers/console-client.js';
import { signedHttp } from '../helpers/signed-fetch.js';
import { seed, startStack, tempDir } from '../helpers/stack.js';

const BODY = '{"remote_console":{"type":"novnc","protocol":"vnc"}}';

function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x55);
  let n = 0;
  try {
    for (;;) {
      writeSync(fd, chunk);
      n += chunk.length;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  // The last partial blocks too.
  const fd2 = openSync(path, 'a');
  try {
    for (;;) writeSync(fd2, Buffer.alloc(512, 0x55));
  } catch {
    /* full */
  } finally {
    closeSync(fd2);
  }
  return n;
}

test('a full disk: clear errors, nothing lost, recovery when space returns', async () => {
  const mountPoint = tempDir('ecs-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mountPoint]);
  } catch (e) {
    assert.fail(`mounting a small tmpfs needs root (CI runs as root): ${(e as Error).message}`);
  }
  const dataDir = join(mountPoint, 'data');
  const stack = await startStack({ dataDir, options: { sqliteBusyTimeoutMs: '200' } });
  try {
    const s = await seed(stack.app);
    const url = `${stack.apiUrl}/v1/${s.projectId}/cloudservers/${s.active.id}/remote_console`;
    const before = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(before.status, 200);
    const kept = before.json.remote_console.url as string;
    const tried = (await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId })).json.remote_console.url as string;
    const filler = join(mountPoint, 'filler');
    assert.ok(fill(filler) > 0);
    let sawFull = false;
    for (let i = 0; i < 20 && !sawFull; i++) {
      const r = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
      assert.ok(r.status === 200 || r.status === 500, `${r.status} ${r.text}`);
      if (r.status === 500) {
        assert.equal(r.json.error.code, 'Common.0001');
        assert.doesNotMatch(r.text, /SQLITE|disk|ENOSPC/i);
        sawFull = true;
      }
    }
    assert.ok(sawFull, 'API calls fail once the disk is full');
    // Consuming rewrites a row in place and may still fit in the WAL: it works or is refused with 503.
    const ws = await openWs(wsUrlOf(tried));
    if (ws.ok) ws.ws.close();
    else assert.equal(ws.status, 503, `console refused with 503 while the store cannot write: ${ws.body}`);
    assert.equal((await fetch(`${stack.apiUrl}/healthz`)).status, 200, 'the process is up');
    rmSync(filler);
    const after = await signedHttp('POST', url, BODY, { ak: s.ak, sk: s.sk, projectId: s.projectId });
    assert.equal(after.status, 200, 'recovers without a restart');
    const ws2 = await openWs(wsUrlOf(kept));
    assert.ok(ws2.ok, 'the token committed before the disk filled still works');
    if (ws2.ok) ws2.ws.close();
  } finally {
    await stack.stop();
    execFileSync('umount', ['-l', mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  }
});
