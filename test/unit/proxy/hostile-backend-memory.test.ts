/**
 * A hostile VNC server (its own process) floods as fast as the proxy reads, at each stage of the
 * handshake and during the relay, while the browser stalls or stops reading; the proxy is the
 * real binary in its own process. Its resident memory (/proc) and Buffer memory (its /metrics)
 * must stay within a few MiB per session of the baseline, and not grow after the sessions end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { consoleUrlFrom, iamTokenFrom, runCli, seedWithCli, startCli, type CliSeed, type RunningServer } from '../../helpers/cli.js';
import { forkHostileVnc, HOSTILE_STAGES, openStalledSession, type HostileStage, type HostileVnc, type StalledSession } from '../../helpers/hostile-vnc.js';
import { http } from '../../helpers/signed-fetch.js';
import { tempDir } from '../../helpers/stack.js';

const SESSIONS = 4;
const MiB = 2 ** 20;
/** The promise: a few MiB per flooded session (SECURITY.md). */
const PER_SESSION = 4 * MiB;
/**
 * What the process may grow by whatever the sessions hold: V8's young generation filling with
 * garbage while messages are framed, allocator slack; Buffers already written to the kernel and
 * not yet collected (no more than what the sockets' kernel buffers took: a few MiB a session). A
 * proxy that buffers the flood passes these within a fraction of a second: with the browser's
 * back-pressure removed, the "sink" stage grew by 110 MiB of RSS and 119 MiB of Buffers at the first
 * sample. The RSS slack is wider than the Buffer one because young-generation garbage shows in RSS
 * only: with another test file running beside this one on 2 cores, the "sink" stage once peaked
 * 67 MiB over its baseline (48 MiB of slack then); run alone, each stage peaks 0.4-15 MiB over.
 */
const RSS_SLACK = 80 * MiB;
const EXTERNAL_SLACK = 32 * MiB;
const FLOOD_MS = 1500;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS');
  return Number(m[1]) * 1024;
}

/** Buffer memory (`process.memoryUsage().external`) of the proxy, from its own metrics. */
async function externalBytes(proxyUrl: string): Promise<number> {
  const r = await http('GET', `${proxyUrl}/metrics`);
  const m = /^ecs_console_nodejs_external_memory_bytes (\d+)/m.exec(r.text);
  assert.ok(m, 'the external memory metric');
  return Number(m[1]);
}

describe('a hostile VNC server cannot grow the proxy\'s memory', () => {
  let backend: HostileVnc;
  let proxy: RunningServer;
  let seeded: CliSeed;
  /** One login for all sessions (a password login runs scrypt, which alone moves RSS by megabytes). */
  let iamToken = '';
  const serverIds = new Map<HostileStage, string>();

  before(async () => {
    backend = await forkHostileVnc();
    const env = { ECS_CONSOLE_DATA_DIR: tempDir(), ECS_CONSOLE_LOG_LEVEL: 'warn' };
    // One server per stage: the seed's own for the first, `server add` for the others.
    seeded = await seedWithCli(env, backend.ports[HOSTILE_STAGES[0]]);
    serverIds.set(HOSTILE_STAGES[0], seeded.serverId);
    for (const stage of HOSTILE_STAGES.slice(1)) {
      const srv = await runCli(['server', 'add', '--project', seeded.projectId, '--name', stage, '--host', '127.0.0.1', '--port', String(backend.ports[stage]), '--json'], env);
      assert.equal(srv.code, 0, srv.stderr);
      serverIds.set(stage, (JSON.parse(srv.stdout) as { id: string }).id);
    }
    proxy = await startCli(['serve', '--api-listen', '127.0.0.1:0', '--proxy-listen', '127.0.0.1:0'], { ...env, ECS_CONSOLE_PROXY_DRAIN_SECONDS: '0' });
    iamToken = await iamTokenFrom(proxy.apiUrl, seeded);
    // Warm-up: code paths compiled, heaps grown to their working size.
    const warm = await open('relay', 1);
    await sleep(300);
    for (const s of warm) s.close();
    await sleep(500);
  });

  after(async () => {
    proxy?.child.kill('SIGKILL');
    await proxy?.exited;
    await backend?.stop();
  });

  async function open(stage: HostileStage, n: number): Promise<StalledSession[]> {
    const out: StalledSession[] = [];
    for (let i = 0; i < n; i++) {
      const token = new URL(await consoleUrlFrom(proxy.apiUrl, { ...seeded, serverId: serverIds.get(stage)! }, iamToken)).searchParams.get('token')!;
      out.push(await openStalledSession(`${proxy.proxyUrl.replace(/^http/, 'ws')}/websockify?token=${token}`, proxy.proxyUrl, stage));
    }
    return out;
  }

  for (const stage of HOSTILE_STAGES) {
    test(`flooding at stage "${stage}": within ${PER_SESSION / MiB} MiB a session, and nothing kept after`, async (t) => {
      const pid = proxy.child.pid!;
      const rss0 = rssBytes(pid);
      const ext0 = await externalBytes(proxy.proxyUrl);
      const flooded0 = await backend.flooded();
      const rssBound = rss0 + SESSIONS * PER_SESSION + RSS_SLACK;
      const extBound = ext0 + SESSIONS * PER_SESSION + EXTERNAL_SLACK;
      const sessions = await open(stage, SESSIONS);
      let peakRss = 0;
      let peakExt = 0;
      try {
        for (const end = Date.now() + FLOOD_MS; Date.now() < end;) {
          peakRss = Math.max(peakRss, rssBytes(pid));
          peakExt = Math.max(peakExt, await externalBytes(proxy.proxyUrl));
          // Stop at the first sample over the bound: a proxy that buffers would eat the machine.
          if (peakRss > rssBound || peakExt > extBound) break;
          await sleep(100);
        }
      } finally {
        for (const s of sessions) s.close();
      }
      const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
      const what = `RSS ${mib(rss0)} -> ${mib(peakRss)}, external ${mib(ext0)} -> ${mib(peakExt)}`;
      t.diagnostic(what);
      if (stage !== 'sink') {
        // The flood was real: the backend wrote more than the proxy may hold.
        assert.ok(await backend.flooded() - flooded0 > SESSIONS * MiB, 'the backend did not flood');
      }
      assert.ok(peakRss <= rssBound, `the proxy's RSS grew beyond ${mib(rssBound - rss0)}: ${what}`);
      assert.ok(peakExt <= extBound, `the proxy's Buffer memory grew beyond ${mib(extBound - ext0)}: ${what}`);
      for (const s of sessions) await s.closed;
      await sleep(1000);
      // After the sessions, nothing more is held: what a flood left would still be growing here.
      assert.ok(rssBytes(pid) <= rssBound, `RSS after the sessions: ${mib(rssBytes(pid))} (${what})`);
      assert.ok(await externalBytes(proxy.proxyUrl) <= extBound, 'Buffer memory after the sessions');
      // The proxy still serves.
      assert.equal((await http('GET', `${proxy.proxyUrl}/healthz`)).status, 200);
    });
  }
});
