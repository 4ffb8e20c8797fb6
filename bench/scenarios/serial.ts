/**
 * Serial consoles beside VNC, on our service only (no other contender has a serial console):
 *
 * - session setup: WebSocket connect to the first message, `concurrency` at a time, each session
 *   closed once open; serial sessions (`/serial-websocket`: token consumed, server re-checked,
 *   attached to the port the service holds, history sent) and VNC sessions (`/websockify` to the
 *   echo backend: token, re-check, backend connect and VNC authentication, ServerInit) in the
 *   same run, tokens issued through the API beforehand (not timed);
 * - output throughput: a stand-in serial port writes as fast as the service reads; MiB/s reaching
 *   one viewer and ten viewers (each gets every byte), and the console output call reading the
 *   full 1 MiB it keeps.
 */
import { createServer, type Socket } from 'node:net';
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import { issueTokens } from '../lib/api-client.js';
import { startOurs } from '../lib/contenders.js';
import { signRequest } from '../../src/identity/sdk-hmac-signer.js';
import { BenchSession, pool } from '../lib/rfb-session.js';
import { fmt, percentile, table } from '../lib/stats.js';
import { type Ctx, type Goal, type ScenarioResult, oursOptions } from './common.js';

const SERIAL_BODY = JSON.stringify({ remote_console: { type: 'serial', protocol: 'serial' } });
const SERVERS = 10;

/** A stand-in serial port: remembers its clients (one per server the service holds) and writes on demand. */
function standInPort(): Promise<{ port: number; clients: Socket[]; close(): Promise<void> }> {
  const clients: Socket[] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    clients.push(s);
    s.write('login: ');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as { port: number }).port, clients,
    close: () => new Promise<void>((r) => {
      for (const c of clients) c.destroy();
      server.close(() => r());
    }),
  })));
}

/** Serial sessions whose history (their first binary message) has arrived. */
const historySeen = new WeakSet<WebSocket>();

/** Opens a serial WebSocket and resolves once its first message (the role, or the history) arrived. */
function openSerial(url: string, origin: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { origin, perMessageDeflate: false });
    ws.on('message', (_d, binary) => {
      if (binary) historySeen.add(ws);
    });
    ws.once('message', () => resolve(ws));
    ws.once('unexpected-response', (_q, r) => reject(new Error(`refused ${r.statusCode}`)));
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
  });
}

/** Writes `bytes` to the socket as fast as it drains. */
async function pump(sock: Socket, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
  }
}

function getOutput(agent: Agent, port: number, path: string, creds: { ak: string; sk: string }): Promise<number> {
  const headers = signRequest({ method: 'GET', url: new URL(`http://127.0.0.1:${port}${path}`), headers: {}, body: '' }, creds.ak, creds.sk, Date.now());
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`console_output answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function serialScenario(ctx: Ctx): Promise<ScenarioResult> {
  const n = ctx.plan.quick ? 300 : 1000;
  const concurrency = 20;
  const mib = ctx.plan.quick ? 16 : 64;
  // One stand-in port per server (the service holds one connection to each).
  const ports = await Promise.all(Array.from({ length: SERVERS }, () => standInPort()));
  const serialPorts = Object.fromEntries(ports.map((p, i) => [`serial-${i}`, `tcp:127.0.0.1:${p.port}`]));
  const ours = await startOurs(ctx.logDir, ctx.backend, { ...oursOptions(ctx, 'echo'), serialPorts });
  const info = ours.info;
  const origin = `http://127.0.0.1:${info.proxy}`;
  const serialIds = ports.map((_, i) => info.serialServers[`serial-${i}`]!);
  try {
    // --- setup, serial then VNC, each session closed once open (the per-server cap holds 10).
    const setup = async (kind: 'serial' | 'vnc'): Promise<{ perSec: number; p50: number; p99: number; failed: number; firstError: string | null }> => {
      const servers = kind === 'serial' ? serialIds : info.echoServers.slice(0, SERVERS);
      const tokens = await issueTokens(info.api, info.projectId, servers, info, n + 50, kind === 'serial' ? SERIAL_BODY : undefined);
      const path = kind === 'serial' ? 'serial-websocket' : 'websockify';
      const one = async (): Promise<number> => {
        const t = tokens.shift()!;
        const t0 = performance.now();
        const url = `ws://127.0.0.1:${info.proxy}/${path}?token=${t}`;
        if (kind === 'serial') {
          const ws = await openSerial(url, origin);
          const ms = performance.now() - t0;
          ws.close();
          return ms;
        }
        const s = await BenchSession.open({ kind: 'ws', url, origin });
        const ms = performance.now() - t0;
        s.close();
        return ms;
      };
      await pool(50, concurrency, one); // warm-up
      const t0 = performance.now();
      const r = await pool(n, concurrency, one);
      const elapsed = performance.now() - t0;
      const ms = r.filter((x): x is number => typeof x === 'number');
      const errors = r.filter((x): x is Error => x instanceof Error);
      return { perSec: ms.length / (elapsed / 1000), p50: percentile(ms, 50), p99: percentile(ms, 99), failed: errors.length, firstError: errors[0]?.message ?? null };
    };
    const serial = await setup('serial');
    ctx.progress(`serial: setup ${fmt(serial.perSec)}/s`);
    const vnc = await setup('vnc');
    ctx.progress(`serial: VNC setup ${fmt(vnc.perSec)}/s`);

    // --- throughput: the port of serial-0 writes `mib` MiB; `viewers` sessions each receive all of it.
    const throughput = async (viewers: number): Promise<number> => {
      const tokens = await issueTokens(info.api, info.projectId, [serialIds[0]!], info, viewers, SERIAL_BODY);
      const wss = await Promise.all(tokens.map((t) => openSerial(`ws://127.0.0.1:${info.proxy}/serial-websocket?token=${t}`, origin)));
      const sock = ports[0]!.clients.find((c) => !c.destroyed);
      if (!sock) throw new Error('the service holds no connection to the stand-in port');
      const total = mib * 1024 * 1024;
      // Each viewer first gets the history the port kept (one message): not counted.
      const counted: Array<{ got: number; history: boolean; done: () => void }> = [];
      const histories: Array<Promise<void>> = [];
      const done = Promise.all(wss.map((ws) => new Promise<void>((resolve) => {
        const c = { got: 0, history: false, done: resolve };
        counted.push(c);
        histories.push(new Promise<void>((h) => {
          if (historySeen.has(ws)) {
            c.history = true;
            h();
          }
          ws.on('message', (d, binary) => {
            if (!binary) return;
            if (!c.history) {
              c.history = true;
              return h();
            }
            c.got += (d as Buffer).length;
            if (c.got >= total) c.done();
          });
        }));
      })));
      await Promise.all(histories);
      const t0 = performance.now();
      await pump(sock, total);
      await done;
      const s = (performance.now() - t0) / 1000;
      for (const ws of wss) ws.close();
      return mib / s;
    };
    const one = await throughput(1);
    const ten = await throughput(10);
    ctx.progress(`serial: ${fmt(one, 1)} MiB/s to one viewer, ${fmt(ten, 1)} MiB/s to ten`);

    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const path = `/v1/${info.projectId}/cloudservers/${serialIds[0]}/console_output`;
    const reads: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      bytes = await getOutput(agent, info.api, path, info);
      reads.push(performance.now() - t0);
    }
    const polls: number[] = [];
    const cursor = 1e15;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await getOutput(agent, info.api, `${path}?cursor=${cursor}`, info);
      polls.push(performance.now() - t0);
    }
    agent.destroy();

    const text = [
      table(['Session setup, connect to first message (20 at a time, closed once open)', 'sessions/s', 'p50 ms', 'p99 ms', 'failed'], [
        ['serial (/serial-websocket)', fmt(serial.perSec), fmt(serial.p50, 1), fmt(serial.p99, 1), String(serial.failed)],
        ['VNC (/websockify, same run)', fmt(vnc.perSec), fmt(vnc.p50, 1), fmt(vnc.p99, 1), String(vnc.failed)],
      ]),
      table(['Serial output', 'measured'], [
        [`port to one viewer (${mib} MiB)`, `${fmt(one, 1)} MiB/s`],
        [`port to ten viewers (each gets all ${mib} MiB)`, `${fmt(ten, 1)} MiB/s per viewer, ${fmt(ten * 10, 1)} MiB/s sent`],
        [`console_output, the full ${fmt(bytes / 1024)} KiB answer`, `p50 ${fmt(percentile(reads, 50), 1)} ms, p99 ${fmt(percentile(reads, 99), 1)} ms`],
        ['console_output with a cursor, nothing new', `p50 ${fmt(percentile(polls, 50), 2)} ms, p99 ${fmt(percentile(polls, 99), 2)} ms`],
      ], 'll'),
    ].join('\n\n');
    const goals: Goal[] = [
      { scenario: 'serial', goal: 'serial setup >= 50% of VNC setup', measured: `${fmt(serial.perSec)} vs ${fmt(vnc.perSec)}/s${serial.failed ? `, ${serial.failed} failed: ${serial.firstError}` : ''}`, met: serial.failed === 0 && serial.perSec >= vnc.perSec * 0.5 },
      { scenario: 'serial', goal: 'output >= 10 MiB/s to one viewer', measured: `${fmt(one, 1)} MiB/s`, met: one >= 10 },
    ];
    return { name: 'serial', text, goals, data: { serial, vnc, oneViewerMiBs: one, tenViewersMiBs: ten, outputFullMs: reads, outputPollMs: polls } };
  } finally {
    await ours.stop();
    await Promise.all(ports.map((p) => p.close()));
  }
}
