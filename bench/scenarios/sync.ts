/**
 * Bulk sync of the inventory (the admin API's PUT .../servers, in process: the service and the
 * store, no HTTP): 5,000 and 50,000 servers on SQLite and on PostgreSQL, each synced twice (the
 * first creates them all, the second finds nothing to change), then once with 1% of the consoles
 * moved (updates, revocations and change-feed entries in the same transaction).
 * PostgreSQL: ECS_CONSOLE_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/test), in a database
 * created for the run and dropped after.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createServices } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import type { ServerSyncItem } from '../../src/inventory/inventory-service.js';
import { createLogger } from '../../src/log.js';
import { table } from '../lib/stats.js';
import type { Ctx, Goal, ScenarioResult } from './common.js';

const SIZES = [5000, 50_000];

async function run(store: string, dataDir: string, n: number, masterKey: string): Promise<{ first: number; again: number; moved: number }> {
  const config = loadConfig({ flags: { dataDir, store }, env: { ECS_CONSOLE_MASTER_KEY: masterKey } });
  const s = await createServices(config, { logger: createLogger({ level: 'silent' }) }, 'create');
  try {
    const p = await s.identity.createProject({ name: `bench-${n}`, domain: 'bench' });
    const items: ServerSyncItem[] = Array.from({ length: n }, (_, i) => ({ id: randomUUID(), name: `vm-${i}`, console: { host: '10.0.0.1', port: 5900 + (i % 1000) } }));
    const scope = { projectId: p.id };
    const time = async (list: ServerSyncItem[]): Promise<number> => {
      const t0 = performance.now();
      await s.inventory.syncServers(scope, list);
      return performance.now() - t0;
    };
    const first = await time(items);
    const again = await time(items);
    const moved = await time(items.map((x, i) => (i % 100 === 0 ? { ...x, console: { host: '10.0.0.2', port: 5900 } } : x)));
    return { first, again, moved };
  } finally {
    await s.close();
  }
}

export async function syncScenario(ctx: Ctx): Promise<ScenarioResult> {
  const rows: string[][] = [];
  const data: Array<Record<string, unknown>> = [];
  const pgUrl = process.env['ECS_CONSOLE_BENCH_POSTGRES'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  // One key for the run: the PostgreSQL database (shared by both sizes) is initialised with it.
  const masterKey = randomBytes(32).toString('base64');
  const dbName = `bench_sync_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const pgStore = pgUrl.replace(/\/[^/]*$/, `/${dbName}`);
  try {
    for (const [name, store] of [['SQLite', null], ['PostgreSQL', pgStore]] as const) {
      for (const n of SIZES) {
        const dir = mkdtempSync(join(tmpdir(), 'bench-sync-'));
        ctx.progress(`sync: ${name}, ${n} servers`);
        try {
          const r = await run(store ?? `sqlite:${join(dir, 'db.sqlite')}`, dir, n, masterKey);
          rows.push([name, String(n), r.first.toFixed(0), r.again.toFixed(0), r.moved.toFixed(0)]);
          data.push({ store: name, servers: n, firstMs: r.first, againMs: r.again, movedMs: r.moved });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
  const five = data.filter((d) => d['servers'] === 5000);
  const goals: Goal[] = five.map((d) => ({
    scenario: 'sync', goal: `${String(d['store'])}: a sync of 5,000 servers within 10 s`,
    measured: `${Number(d['firstMs']).toFixed(0)} ms (first), ${Number(d['againMs']).toFixed(0)} ms (unchanged)`, met: Number(d['firstMs']) < 10_000,
  }));
  const text = table(['store', 'servers', 'first sync (all created), ms', 'same list again (no change), ms', '1% moved (revoked), ms'], rows);
  return { name: 'sync', text, goals, data };
}
