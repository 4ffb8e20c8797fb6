/**
 * `ecs-console master-key rotate` on SQLite and on PostgreSQL while nodes serve consoles: the new
 * key reaches the running nodes through SIGHUP (the key file, or the config file's `masterKey`
 * ring), the rotation is killed with SIGKILL halfway (every secret still opens with one of the two
 * keys), resumed, and finishes with every secret sealed with the new key, the old key retired (a
 * node holding only it is refused), and no console or signed call failing at any point.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../../src/app.js';
import { loadConfig, type ConfigSources } from '../../src/config/config.js';
import { DemoVncServer } from '../../src/demo/index.js';
import { silentLogger } from '../../src/log.js';
import { SecretBox } from '../../src/secrets/secret-box.js';
import { MAIN, runCli, startCli, startOrExit, type CliResult, type RunningServer } from '../helpers/cli.js';
import { openConsole } from '../helpers/console-client.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { signedHttp } from '../helpers/signed-fetch.js';
import { tempDir } from '../helpers/stack.js';

const KEYS = 1500;
const SERVERS = 30;
const LISTEN = ['--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'];

const must = (r: CliResult): CliResult => {
  assert.equal(r.code, 0, r.stderr);
  return r;
};

interface Seeded {
  projectId: string;
  keys: Array<{ ak: string; sk: string }>;
  servers: string[];
}

/** Keys and password-protected servers, made through the services on the store of `sources`. */
async function seedStore(sources: ConfigSources, vncPort: number): Promise<Seeded> {
  const s = await createServices(loadConfig(sources), { logger: silentLogger() });
  try {
    const p = await s.identity.createProject({ name: 'p1', domain: 'acme' });
    const user = await s.identity.createUser({ domain: 'acme', name: 'alice', password: 'Secr3t-passw0rd' });
    const keys: Seeded['keys'] = [];
    for (let i = 0; i < KEYS; i++) {
      const k = await s.identity.createAccessKey({ userId: user.id, projectId: p.id });
      keys.push({ ak: k.ak, sk: k.sk });
    }
    const servers: string[] = [];
    for (let i = 0; i < SERVERS; i++) {
      servers.push((await s.inventory.addServer({ projectId: p.id, name: `vm-${i}`, console: { host: '127.0.0.1', port: vncPort, auth: 'vnc-password', password: 'vncsecr' } })).id);
    }
    return { projectId: p.id, keys, servers };
  } finally {
    await s.close();
  }
}

/**
 * Consoles opened one after another until stopped, each with another key and server: every one
 * verifies an AK/SK signature (a sealed secret key) and authenticates to a VNC server (a sealed
 * password). Resolves with how many succeeded and the failures.
 */
function traffic(apiUrl: () => string, seeded: Seeded): { stop(): Promise<{ ok: number; failures: string[] }> } {
  let stopping = false;
  let ok = 0;
  const failures: string[] = [];
  const loop = (async () => {
    for (let i = 0; !stopping; i++) {
      const key = seeded.keys[(i * 37) % seeded.keys.length]!;
      const server = seeded.servers[i % seeded.servers.length]!;
      try {
        const r = await signedHttp('POST', `${apiUrl()}/v1/${seeded.projectId}/cloudservers/${server}/remote_console`,
          '{"remote_console":{"type":"novnc","protocol":"vnc"}}', { ak: key.ak, sk: key.sk, projectId: seeded.projectId });
        if (r.status !== 200) throw new Error(`remote_console ${r.status} ${r.text}`);
        const c = await openConsole(r.json.remote_console.url as string);
        c.ws.close();
        await c.closed;
        ok++;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return { ok, failures };
    },
  };
}

interface Status {
  ring: string[];
  storeKeys: string[];
  sealedWith: Record<string, number>;
  unreadable: number;
}

async function status(env: Record<string, string>): Promise<Status> {
  return JSON.parse(must(await runCli(['master-key', 'status', '--json'], env)).stdout) as Status;
}

/**
 * Runs `master-key rotate` with small batches, stops it (SIGSTOP) as soon as it reports its first
 * committed batch, hands back what the store holds at that moment, then kills it with SIGKILL.
 */
async function rotateAndKill(env: Record<string, string>): Promise<Status> {
  const child = spawn(process.execPath, [MAIN, 'master-key', 'rotate', '--batch', '10'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/re-sealed \d+ secret/.test(err)) {
        child.kill('SIGSTOP');
        resolve();
      }
    });
    void exited.then(() => reject(new Error(`the rotation ended before its first batch was reported: ${err}`)));
  });
  const halfway = await status(env);
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  return halfway;
}

/** Every seeded secret key opens, with the ring of `sources`, to what it was. */
async function assertSecretsOpen(sources: ConfigSources, seeded: Seeded): Promise<void> {
  const s = await createServices(loadConfig(sources), { logger: silentLogger() });
  try {
    for (const k of seeded.keys) {
      const row = await s.stores.identity.getAccessKey(k.ak);
      assert.equal(s.box.open(row!.skSealed, `sk:${k.ak}`), k.sk);
    }
    for (const id of seeded.servers) assert.equal(s.inventory.resolveTarget(await s.inventory.getServer(id)).password, 'vncsecr');
  } finally {
    await s.close();
  }
}

const logLines = (n: RunningServer): Array<Record<string, unknown>> => n.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

async function reloaded(n: RunningServer, keyIds: string[]): Promise<void> {
  const seen = (): boolean => logLines(n).some((l) => l['msg'] === 'configuration reloaded' && JSON.stringify(l['keyIds']) === JSON.stringify(keyIds));
  for (let i = 0; i < 400 && !seen(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(seen(), `no reload to ${keyIds.join(',')}: ${n.stdout().slice(-2000)}`);
}

/** Checks the halfway state: both keys seal some secrets, the store knows both, every secret opens with one of them. */
function assertHalfway(halfway: Status, oldId: string, newId: string): void {
  assert.ok((halfway.sealedWith[oldId] ?? 0) > 0 && (halfway.sealedWith[newId] ?? 0) > 0, `not halfway: ${JSON.stringify(halfway.sealedWith)}`);
  assert.equal(halfway.unreadable, 0);
  assert.deepEqual([...halfway.storeKeys].sort(), [oldId, newId].sort());
}

describe('master key rotation', () => {
  test('SQLite, one node running: the key file carries the ring; SIGKILL halfway, resumed, finished', async () => {
    const vnc = new DemoVncServer({ name: 'rot', width: 160, height: 100, password: 'vncsecr' });
    const { port } = await vnc.listen(0, '127.0.0.1');
    const dir = tempDir('ecs-rotate-');
    const dataDir = join(dir, 'data');
    const env = { ECS_CONSOLE_DATA_DIR: dataDir, ECS_CONSOLE_LOG_LEVEL: 'info', ECS_CONSOLE_SQLITE_BUSY_TIMEOUT_MS: '20000' };
    try {
      must(await runCli(['init'], env));
      const oldKey = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
      const oldId = new SecretBox(Buffer.from(oldKey, 'base64')).keyId;
      const seeded = await seedStore({ flags: { dataDir }, env: {} }, port);
      const node = await startCli(['serve', ...LISTEN], env);
      const load = traffic(() => node.apiUrl, seeded);
      try {
        must(await runCli(['master-key', 'add'], env));
        const ring = readFileSync(join(dataDir, 'master.key'), 'utf8').trim().split('\n');
        assert.equal(ring.length, 2);
        assert.equal(ring[1], oldKey);
        const newId = new SecretBox(Buffer.from(ring[0]!, 'base64')).keyId;
        // The running node takes the new ring on SIGHUP.
        node.child.kill('SIGHUP');
        await reloaded(node, [newId, oldId]);

        assertHalfway(await rotateAndKill(env), oldId, newId);
        const after = await status(env);
        assert.equal(after.unreadable, 0, 'a secret opens with neither key after the kill');
        assert.equal(readFileSync(join(dataDir, 'master.key'), 'utf8').trim().split('\n').length, 2, 'the key file still holds both keys');

        const done = JSON.parse(must(await runCli(['master-key', 'rotate', '--json'], env)).stdout) as { keyId: string; retired: string };
        assert.equal(done.keyId, newId);
        assert.equal(done.retired, oldId);
        const end = await status(env);
        assert.deepEqual(end.sealedWith, { [newId]: KEYS + SERVERS });
        assert.deepEqual(end.storeKeys, [newId]);
        assert.deepEqual(readFileSync(join(dataDir, 'master.key'), 'utf8').trim().split('\n'), [ring[0]]);
        assert.equal(readFileSync(join(dataDir, `master.key.retired-${oldId}`), 'utf8').trim(), oldKey);
        node.child.kill('SIGHUP');
        await reloaded(node, [newId]);
      } finally {
        const t = await load.stop();
        node.child.kill('SIGTERM');
        await node.exited;
        assert.deepEqual(t.failures, []);
        assert.ok(t.ok > 10, `only ${t.ok} consoles during the rotation`);
      }
      await assertSecretsOpen({ flags: { dataDir }, env: {} }, seeded);
      // Only the old key: refused, naming both key ids.
      const stale = join(dir, 'stale');
      const old = await startOrExit(['serve', ...LISTEN], { ...env, ECS_CONSOLE_DATA_DIR: stale, ECS_CONSOLE_STORE: `sqlite:${join(dataDir, 'ecs-console.db')}`, ECS_CONSOLE_MASTER_KEY: oldKey });
      assert.equal(old.started, false);
      assert.equal(old.code, 2, old.stderr);
      assert.match(old.stderr, new RegExp(`key id ${oldId}.*is not the master key of the store`));
    } finally {
      await vnc.close();
    }
  });

  test('PostgreSQL, an API node and a proxy node running: the config file\'s masterKey ring reloaded on SIGHUP; SIGKILL halfway, resumed, finished', async () => {
    const vnc = new DemoVncServer({ name: 'rot-pg', width: 160, height: 100, password: 'vncsecr' });
    const { port } = await vnc.listen(0, '127.0.0.1');
    const db = await createTestDatabase();
    const dir = tempDir('ecs-rotate-pg-');
    const file = join(dir, 'config.json');
    const oldKey = must(await runCli(['master-key', 'generate'], {})).stdout.trim();
    const writeConfig = (masterKey: string): void => writeFileSync(file, JSON.stringify({ store: db.url, masterKey, logLevel: 'info' }));
    writeConfig(oldKey);
    const env = { ECS_CONSOLE_CONFIG: file, ECS_CONSOLE_DATA_DIR: join(dir, 'data') };
    const sources = { file, env: {} };
    try {
      must(await runCli(['init'], env));
      const oldId = new SecretBox(Buffer.from(oldKey, 'base64')).keyId;
      const seeded = await seedStore(sources, port);
      const proxyNode = await startCli(['proxy', '--proxy-listen', '127.0.0.1:0', '--node-id', 'proxy-1'], env);
      const apiNode = await startCli(['api', '--api-listen', '127.0.0.1:0', '--node-id', 'api-1', '--public-url', proxyNode.proxyUrl], env);
      const load = traffic(() => apiNode.apiUrl, seeded);
      try {
        const newKey = must(await runCli(['master-key', 'generate'], {})).stdout.trim();
        const newId = new SecretBox(Buffer.from(newKey, 'base64')).keyId;
        must(await runCli(['master-key', 'add', '--key-stdin'], env, newKey));
        writeConfig(`${newKey},${oldKey}`);
        for (const n of [apiNode, proxyNode]) n.child.kill('SIGHUP');
        for (const n of [apiNode, proxyNode]) await reloaded(n, [newId, oldId]);

        assertHalfway(await rotateAndKill(env), oldId, newId);
        assert.equal((await status(env)).unreadable, 0, 'a secret opens with neither key after the kill');

        const done = JSON.parse(must(await runCli(['master-key', 'rotate', '--json'], env)).stdout) as { keyId: string; retired: string };
        assert.equal(done.retired, oldId);
        const end = await status(env);
        assert.deepEqual(end.sealedWith, { [newId]: KEYS + SERVERS });
        assert.deepEqual(end.storeKeys, [newId]);
        writeConfig(newKey);
        for (const n of [apiNode, proxyNode]) n.child.kill('SIGHUP');
        for (const n of [apiNode, proxyNode]) await reloaded(n, [newId]);
        await assertSecretsOpen(sources, seeded);

        // A node given only the old key is refused; a reload back to it is not taken.
        const old = await startOrExit(['api', '--api-listen', '127.0.0.1:0'], { ...env, ECS_CONSOLE_CONFIG: '', ECS_CONSOLE_STORE: db.url, ECS_CONSOLE_MASTER_KEY: oldKey });
        assert.equal(old.code, 2, old.stderr);
        writeConfig(oldKey);
        apiNode.child.kill('SIGHUP');
        for (let i = 0; i < 400 && !logLines(apiNode).some((l) => l['msg'] === 'master key ring not reloaded; the current keys stay in use'); i++) await new Promise((r) => setTimeout(r, 25));
        assert.ok(logLines(apiNode).some((l) => l['msg'] === 'master key ring not reloaded; the current keys stay in use' && l['level'] === 'error'));
      } finally {
        const t = await load.stop();
        for (const n of [apiNode, proxyNode]) n.child.kill('SIGTERM');
        await Promise.all([apiNode.exited, proxyNode.exited]);
        assert.deepEqual(t.failures, []);
        assert.ok(t.ok > 10, `only ${t.ok} consoles during the rotation`);
      }
    } finally {
      await vnc.close();
      await db.drop();
    }
    assert.ok(!existsSync(join(dir, 'data', 'master.key')), 'a configured key never writes a key file');
  });
});
