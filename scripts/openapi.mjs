#!/usr/bin/env node
// Writes docs/openapi.json: the document the API listener serves at GET /openapi.json, fetched from
// an API node started on a temporary store at 127.0.0.1:0 (with no environment or config file, so
// the document is the same on every machine). Run through `npm run openapi` (compiles first).
// A unit test (test/unit/api/openapi.test.ts) fails when the served and the committed documents differ.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { createApp } = await import(join(root, 'dist/src/app.js'));
const { listenerUrl, loadConfig } = await import(join(root, 'dist/src/config/config.js'));
const { createLogger } = await import(join(root, 'dist/src/log.js'));

const dataDir = mkdtempSync(join(tmpdir(), 'ecs-console-openapi-'));
try {
  const config = loadConfig({ flags: { dataDir, apiListen: '127.0.0.1:0' }, env: {} });
  const app = await createApp(config, 'api', { logger: createLogger({ level: 'error' }) });
  try {
    const addrs = await app.start();
    const res = await fetch(`${listenerUrl(config, 'api', addrs.api)}/openapi.json`);
    if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
    const doc = await res.json();
    const out = join(root, 'docs', 'openapi.json');
    writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
    console.log(`wrote ${out}: ${Object.keys(doc.paths).length} paths`);
  } finally {
    await app.stop();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
