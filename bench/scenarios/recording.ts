/**
 * Recording on vs off, side by side in one run: two of our services, one with a project
 * recording policy, the other without. Bulk throughput (the bulk scenario's measurement), JS heap
 * per idle session, and recording bytes per hour of a console that is idle (the demo server's
 * blinking cursor and clock) and busy (typing and scrolling). Then screenshot latency against each
 * backend: the demo server, Xvnc and QEMU (those two when installed), capture and PNG encoding.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/config.js';
import { Backends } from '../../src/backends/drivers.js';
import { DemoVncServer } from '../../src/demo/index.js';
import type { InventoryService } from '../../src/inventory/inventory-service.js';
import type { Server } from '../../src/inventory/types.js';
import { silentLogger } from '../../src/log.js';
import { RecordType, RecordingWriter, readRecording, type WriterProgress } from '../../src/recording/recording-file.js';
import { SeekableCache, seekableCacheFile } from '../../src/recording/seekable-cache.js';
import type { RecordingRecord } from '../../src/recording/types.js';
import { ScreenshotService, encodeFrame } from '../../src/screenshot/screenshot-service.js';
import { InProcessBackendLocks } from '../../src/store/sqlite/sqlite-stores.js';
import { openConsole } from '../../test/helpers/console-client.js';
import { hourOfUpdates } from '../../test/helpers/hour-recording.js';
import { startQemu, startXvnc, type RealVnc } from '../../test/helpers/real-vnc.js';
import { issueTokens } from '../lib/api-client.js';
import { type Contender, type Ours, startOurs } from '../lib/contenders.js';
import { fmt, median, percentile, sleep, table, until } from '../lib/stats.js';
import { type BulkRound, type Ctx, type Goal, type ScenarioResult, bulkRound, closeAll, openMany, oursOptions, profiled, rotate, stopAll } from './common.js';

/** JS heap per idle session (KiB): `n` sessions opened, full GC before each reading. */
async function heapPerSession(c: Contender, n: number): Promise<number> {
  await c.gc();
  const before = (await c.memory!()).heapUsed;
  await c.prepare(n);
  const o = await openMany(c, n, 50);
  if (o.failures > 0) throw new Error(`${c.name}: ${o.failures} of ${n} idle sessions failed: ${o.firstError}`);
  await sleep(1500);
  await c.gc();
  const after = (await c.memory!()).heapUsed;
  await closeAll(c, o.sessions);
  return (after - before) / 1024 / n;
}

async function recordingBytes(c: Ours): Promise<{ recordings: number; bytes: number }> {
  return (await c.ipc!({ cmd: 'recording-bytes' })) as unknown as { recordings: number; bytes: number };
}

/** Recording bytes per hour of one console to the demo server, idle or typed into for `seconds`. */
async function bytesPerHour(c: Ours, demoServerId: string, seconds: number, busy: boolean): Promise<number> {
  const before = await recordingBytes(c);
  const [token] = await issueTokens(c.info.api, c.info.projectId, [demoServerId], c.info, 1);
  const con = await openConsole(`http://127.0.0.1:${c.info.proxy}/vnc_auto.html?token=${token}`);
  const t0 = Date.now();
  let i = 0;
  while (Date.now() - t0 < seconds * 1000) {
    if (busy) {
      // About ten keys a second, a line every 60: the console echoes and scrolls.
      con.client.typeText(i % 60 === 59 ? '\r' : String.fromCharCode(97 + (i % 26)));
      i++;
    }
    await sleep(100);
  }
  con.ws.close();
  await con.closed;
  await until(async () => (await recordingBytes(c)).recordings > before.recordings && (await c.sessions()) === 0, 10_000, 100);
  await sleep(500);
  const after = await recordingBytes(c);
  return ((after.bytes - before.bytes) / seconds) * 3600;
}

/** Screenshot latency (ms) of `n` captures plus PNG encoding of a static VNC target. */
async function screenshotLatency(host: string, port: number, password: string | null, n: number): Promise<number[]> {
  const config = loadConfig({ flags: {}, env: {} });
  const backends = new Backends({ config, locks: new InProcessBackendLocks(), clock: systemClock, log: silentLogger() });
  const target = { serverId: 'bench', console: { kind: 'static', host, port, auth: password ? 'vnc-password' : 'none', tls: null }, password } as const;
  const inventory = { resolveTarget: () => target } as unknown as InventoryService;
  const svc = new ScreenshotService(inventory, backends, systemClock, { perServerLimit: 0, perServerWindowMs: 60_000, timeoutMs: 20_000, jpegQuality: 85 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const frame = await svc.capture({} as Server, AbortSignal.timeout(20_000));
    encodeFrame(frame, 'png');
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * The seekable form of an hour-long recording loaded `rounds` times as the API node loads it for
 * the player: the sealed file read and verified, then the form built and kept (first load: the
 * kept copy removed before each round) or opened from what was kept (later loads).
 */
async function seekableLoads(rounds: number, progress: (m: string) => void): Promise<{ first: number[]; cached: number[]; keyframes: number; sealedMB: number; cacheMB: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ecs-bench-seekable-'));
  try {
    const id = randomUUID();
    const key = randomBytes(32);
    const file = `${id}.ecsrec`;
    let last: WriterProgress | null = null;
    const w = new RecordingWriter(id, key, join(dir, file), (pr) => (last = pr), (e) => {
      throw e;
    });
    let n = 0;
    hourOfUpdates((init) => w.append(RecordType.ServerInit, 0, init), (ms, bytes) => {
      w.append(RecordType.ServerBytes, ms, bytes);
      if (n++ % 10 === 0) w.flush();
    });
    await w.close();
    const pr = last as WriterProgress | null;
    if (!pr) throw new Error('the hour was not written');
    const rec = { id, file, chunks: pr.chunks, digest: pr.digest, endedAt: 1 } as RecordingRecord;
    const cache = new SeekableCache({ dir, log: silentLogger(), exists: async () => true });
    let keyframes = 0;
    const once = async (expect: string): Promise<number> => {
      const t0 = performance.now();
      const read = await readRecording(join(dir, file), id, key, { chunks: pr.chunks, digest: pr.digest });
      const r = await cache.get(rec, key, read);
      const ms = performance.now() - t0;
      if (r.cache !== expect) throw new Error(`seekable form: ${r.cache}, expected ${expect}`);
      keyframes = r.form?.keyframes ?? 0;
      return ms;
    };
    const first: number[] = [];
    const cached: number[] = [];
    for (let i = 0; i < rounds; i++) {
      rmSync(join(dir, seekableCacheFile(rec)), { force: true });
      first.push(await once('built'));
      cached.push(await once('hit'));
      progress(`seekable form of an hour: first load ${fmt(first.at(-1))} ms, kept ${fmt(cached.at(-1))} ms, ${keyframes} keyframes`);
    }
    return { first, cached, keyframes, sealedMB: pr.bytes / 1e6, cacheMB: statSync(join(dir, seekableCacheFile(rec))).size / 1e6 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function recordingScenario(ctx: Ctx): Promise<ScenarioResult> {
  const p = ctx.plan;
  const demo = new DemoVncServer({ name: 'bench-demo', width: 1024, height: 768 });
  const demoPort = (await demo.listen(0)).port;
  let plain: Ours | null = null;
  let rec: Ours | null = null;
  const peers: RealVnc[] = [];
  try {
    plain = await startOurs(ctx.logDir, ctx.backend, { ...oursOptions(ctx, 'stream'), extraPorts: { demo: demoPort } });
    rec = await startOurs(ctx.logDir, ctx.backend, { ...oursOptions(ctx, 'stream'), extraPorts: { demo: demoPort }, recording: true });
    const cs: Contender[] = [plain, rec];
    // Warm-up, not counted: a full round each, as in the bulk scenario (a 16 MiB warm-up left the
    // first counted round of each contender at about half the rate of its later rounds).
    for (const c of cs) {
      const w = await bulkRound(c, ctx.backend, p.bulkMiB);
      ctx.progress(`recording: bulk warm-up (not counted): ${c.name}: ${fmt(w.mbps)} MB/s, CPU ms/MB ${fmt(w.cpu.contender ?? NaN, 2)}`);
    }
    const rounds = new Map<string, BulkRound[]>(cs.map((c) => [c.name, []]));
    for (let r = 0; r < p.recordingBulkRounds; r++) {
      for (const c of rotate(cs, r)) {
        // Profiling runs (--profile): the main thread of each service during its bulk rounds.
        const round = await profiled(ctx, c, c === rec ? 'recording-bulk-on' : 'recording-bulk-off', () => bulkRound(c, ctx.backend, p.bulkMiB));
        rounds.get(c.name)!.push(round);
        ctx.progress(`recording: bulk round ${r + 1}: ${c.name}: ${fmt(round.mbps)} MB/s, CPU ms/MB ${fmt(round.cpu.contender ?? NaN, 2)}`);
        await sleep(200);
      }
    }
    const idleN = p.quick ? 200 : 1000;
    const heap = new Map<string, number>();
    for (const c of cs) {
      heap.set(c.name, await heapPerSession(c, idleN));
      ctx.progress(`recording: ${c.name}: ${fmt(heap.get(c.name), 2)} KiB of JS heap per idle session (${idleN})`);
    }
    const seconds = p.quick ? 10 : 30;
    const idleHour = await bytesPerHour(rec, rec.info.extraServers['demo']!, seconds, false);
    ctx.progress(`recording: idle console: ${fmt(idleHour / 1e6, 2)} MB/hour`);
    const busyHour = await bytesPerHour(rec, rec.info.extraServers['demo']!, seconds, true);
    ctx.progress(`recording: busy console: ${fmt(busyHour / 1e6, 1)} MB/hour`);

    const shots: Array<[string, number[]]> = [];
    const n = p.quick ? 5 : 20;
    shots.push(['demo server (1024x768, ZRLE)', await screenshotLatency('127.0.0.1', demoPort, null, n)]);
    if (existsSync('/usr/bin/Xvnc')) {
      const x = await startXvnc('benchpw1', '1280x800');
      peers.push(x);
      await x.paint('#336699');
      shots.push(['Xvnc (1280x800)', await screenshotLatency('127.0.0.1', x.port, 'benchpw1', n)]);
    }
    if (existsSync('/usr/bin/qemu-system-x86_64')) {
      const q = await startQemu('benchpw2');
      peers.push(q);
      await sleep(1000);
      shots.push(['QEMU (SeaBIOS, 720x400)', await screenshotLatency('127.0.0.1', q.port, 'benchpw2', n)]);
    }

    // The player's seekable form of an hour of a busy console, loaded as the API node does when
    // the player opens a finished recording (read and verify the sealed file, then the form):
    // the first load builds it and keeps it sealed beside the recording, later loads open what
    // was kept. The seeks themselves are measured in Chromium by test/system/playback.test.ts.
    const seek = await seekableLoads(p.quick ? 1 : 3, (m) => ctx.progress(`recording: ${m}`));

    const med = (name: string): number => median(rounds.get(name)!.map((x) => x.mbps));
    const medCpu = (name: string, k: keyof BulkRound['cpu']): number => median(rounds.get(name)!.map((x) => x.cpu[k] ?? NaN));
    const off = med('ecs-console');
    const on = med('ecs-console, recording');
    const heapOff = heap.get('ecs-console')!;
    const heapOn = heap.get('ecs-console, recording')!;
    const text = [
      table([`Recording off vs on (bulk ${p.bulkMiB} MiB)`, 'MB/s (median)', 'rounds', 'CPU ms/MB: ecs-console', 'backend', 'client', `JS heap KiB/idle session (${idleN})`], cs.map((c) => [
        c.name, fmt(med(c.name)), rounds.get(c.name)!.map((x) => fmt(x.mbps)).join(' / '), fmt(medCpu(c.name, 'contender'), 2), fmt(medCpu(c.name, 'backend'), 2),
        fmt(medCpu(c.name, 'client'), 2), fmt(heap.get(c.name), 2)])),
      table(['Recording size (demo console 1024x768)', 'MB per hour'], [['idle (blinking cursor, clock)', fmt(idleHour / 1e6, 2)], ['busy (typing ~10 keys/s, scrolling)', fmt(busyHour / 1e6, 1)]]),
      table(['Screenshot (connect, authenticate, full update, PNG)', 'median ms', 'p90 ms'], shots.map(([name, xs]) => [name, fmt(median(xs)), fmt(percentile(xs, 90))])),
      table(['Seekable form of an hour-long recording (3,600 updates), loaded by the API node', 'median ms', 'keyframes'], [
        [`first load: read, built (decode, re-deflate, keyframes), kept (${fmt(seek.sealedMB, 1)} MB recording, ${fmt(seek.cacheMB, 1)} MB kept)`, fmt(median(seek.first)), String(seek.keyframes)],
        ['later loads: read, the kept form opened', fmt(median(seek.cached)), String(seek.keyframes)],
      ]),
    ].join('\n\n');
    const goals: Goal[] = [
      { scenario: 'recording', goal: 'bulk with recording >= 90% of without', measured: `${fmt((on / off) * 100)}% (${fmt(on)} vs ${fmt(off)} MB/s)`, met: on >= off * 0.9 },
      { scenario: 'recording', goal: 'idle session memory +2 KiB at most', measured: `${fmt(heapOn - heapOff, 2)} KiB (${fmt(heapOn, 2)} vs ${fmt(heapOff, 2)})`, met: heapOn - heapOff <= 2 },
    ];
    return {
      name: 'recording', text, goals,
      data: { seekableFirstLoadMs: seek.first, seekableCachedLoadMs: seek.cached, keyframes: seek.keyframes, seekableMB: { recording: seek.sealedMB, kept: seek.cacheMB }, mbps: Object.fromEntries([...rounds].map(([k, v]) => [k, v.map((x) => x.mbps)])), cpuMsPerMB: Object.fromEntries([...rounds].map(([k, v]) => [k, v.map((x) => x.cpu)])), heapKiBPerIdleSession: Object.fromEntries(heap), idleSessions: idleN, bytesPerHour: { idle: idleHour, busy: busyHour }, screenshotMs: Object.fromEntries(shots) },
    };
  } finally {
    await stopAll([plain, rec]);
    await Promise.all(peers.map((x) => x.stop()));
    await demo.close();
  }
}
