import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configDoc, consoleBaseUrl, loadConfig } from '../../../src/config/config.js';
import { OPTIONS } from '../../../src/config/schema.js';
import { ConfigError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/stack.js';

test('defaults', () => {
  const c = loadConfig({ env: {}, cwd: '/srv' });
  assert.equal(c.dataDir, '/srv/data');
  assert.equal(c.store, 'sqlite:/srv/data/ecs-console.db');
  assert.deepEqual(c.apiListen, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(c.proxyListen, { host: '127.0.0.1', port: 6080 });
  assert.equal(c.consoleTokenTtlSeconds, 600);
  assert.equal(c.consoleUrlTLength, '70');
  assert.ok(Object.isFrozen(c));
  for (const o of OPTIONS) assert.ok(o.key in c, `${o.key} missing from the config object`);
});

test('precedence: flags > environment > file > defaults', () => {
  const dir = tempDir();
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ consoleTokenTtlSeconds: 100, apiListen: '0.0.0.0:1', publicUrlByAz: { az2: 'https://az2.example.com/' } }));
  const c1 = loadConfig({ file, env: {} });
  assert.equal(c1.consoleTokenTtlSeconds, 100);
  assert.deepEqual(c1.publicUrlByAz, { az2: 'https://az2.example.com' });
  const c2 = loadConfig({ file, env: { ECS_CONSOLE_CONSOLE_TOKEN_TTL_SECONDS: '200', ECS_CONSOLE_API_LISTEN: '[::1]:9' } });
  assert.equal(c2.consoleTokenTtlSeconds, 200);
  assert.deepEqual(c2.apiListen, { host: '::1', port: 9 });
  const c3 = loadConfig({ file, env: { ECS_CONSOLE_CONSOLE_TOKEN_TTL_SECONDS: '200', ECS_CONSOLE_CONFIG: '/nonexistent' }, flags: { consoleTokenTtlSeconds: '300' } });
  assert.equal(c3.consoleTokenTtlSeconds, 300);
});

test('bad values name the option and the source', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ECS_CONSOLE_API_LISTEN: 'localhost' }, /"apiListen".*host:port.*environment ECS_CONSOLE_API_LISTEN/],
    [{ ECS_CONSOLE_API_LISTEN: '1.2.3.4:70000' }, /"apiListen".*65535/],
    [{ ECS_CONSOLE_CONSOLE_TOKEN_TTL_SECONDS: '1' }, /"consoleTokenTtlSeconds".*below the minimum 5/],
    [{ ECS_CONSOLE_CONSOLE_TOKEN_TTL_SECONDS: '10s' }, /"consoleTokenTtlSeconds".*integer/],
    [{ ECS_CONSOLE_PUBLIC_URL: 'ftp://x' }, /"publicUrl".*http or https/],
    [{ ECS_CONSOLE_PUBLIC_URL: 'https://x/?a=1' }, /"publicUrl".*query/],
    [{ ECS_CONSOLE_LOG_LEVEL: 'loud' }, /"logLevel".*one of/],
    [{ ECS_CONSOLE_TRUST_PROXY: "maybe" }, /"trustProxy".*true or false/],
    [{ ECS_CONSOLE_STORE: 'mysql://x' }, /"store"/],
    [{ ECS_CONSOLE_CONFIG: '/nonexistent/c.json' }, /"config".*cannot read/],
    // A live node's rows must not look stale between two heartbeats.
    [{ ECS_CONSOLE_SESSION_HEARTBEAT_SECONDS: '31' }, /"sessionStaleSeconds".*twice sessionHeartbeatSeconds \(31 s\)/],
    [{ ECS_CONSOLE_SESSION_STALE_SECONDS: '3', ECS_CONSOLE_SESSION_HEARTBEAT_SECONDS: '2' }, /"sessionStaleSeconds"/],
  ];
  for (const [env, re] of cases) assert.throws(() => loadConfig({ env }), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), JSON.stringify(env));
});

test('file: unknown keys and bad JSON are refused', () => {
  const dir = tempDir();
  const f1 = join(dir, 'a.json');
  writeFileSync(f1, '{"consoleTokenTTL": 5}');
  assert.throws(() => loadConfig({ file: f1, env: {} }), /"consoleTokenTTL": unknown option/);
  const f2 = join(dir, 'b.json');
  writeFileSync(f2, '{nope');
  assert.throws(() => loadConfig({ file: f2, env: {} }), /not valid JSON/);
  const f3 = join(dir, 'c.json');
  writeFileSync(f3, '{"publicUrlByAz": {"az1": "not a url"}}');
  assert.throws(() => loadConfig({ file: f3, env: {} }), /"publicUrlByAz\.az1"/);
});

test('console base URL: per AZ, then publicUrl, then the proxy address', () => {
  const dir = tempDir();
  const f = join(dir, 'c.json');
  writeFileSync(f, JSON.stringify({ publicUrl: 'https://console.example.com', publicUrlByAz: { az2: 'https://az2.example.com' } }));
  const c = loadConfig({ file: f, env: {} });
  assert.equal(consoleBaseUrl(c, 'az2', { host: '0.0.0.0', port: 1 }), 'https://az2.example.com');
  assert.equal(consoleBaseUrl(c, 'az1', { host: '0.0.0.0', port: 1 }), 'https://console.example.com');
  const d = loadConfig({ env: {} });
  assert.equal(consoleBaseUrl(d, 'az1', { host: '0.0.0.0', port: 6080 }), 'http://127.0.0.1:6080');
  assert.equal(consoleBaseUrl(d, 'az1', { host: '::1', port: 6080 }), 'http://[::1]:6080');
});

test('docs/config.md holds the generated table of every option', () => {
  const doc = readFileSync(new URL('../../../../docs/config.md', import.meta.url), 'utf8');
  assert.ok(doc.includes(configDoc()), 'docs/config.md is out of date: paste `ecs-console config-doc` into it');
});
