/**
 * A stand-in for QEMU in unit tests (which need only Node): the demo VNC server as its VNC server,
 * and a QMP monitor on a unix socket that sets and expires its one password as QEMU does
 * (qapi/ui.json set_password, expire_password). Like QEMU's monitor it serves one client at a
 * time (the next is greeted when the current one leaves). Modes script the failures a real
 * monitor shows: commands refused, a monitor that stops answering, one that never greets.
 * The real QEMU is in test/system/qemu-qmp.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DemoVncServer } from '../../src/demo/index.js';

export type FakeQmpMode = 'ok' | 'refuse' | 'slow' | 'silent';

export interface FakeQemu {
  readonly vncPort: number;
  readonly qmpPath: string;
  readonly vnc: DemoVncServer;
  /** Every password set over QMP, in order. */
  readonly passwords: string[];
  /** Every expire_password `time` argument, in order. */
  readonly expiries: string[];
  mode: FakeQmpMode;
  stop(): Promise<void>;
}

/** A password nobody knows: what an expired password amounts to for a client. */
const unknowable = (): string => randomBytes(6).toString('base64');

export async function startFakeQemu(name = 'fake-vm'): Promise<FakeQemu> {
  const dir = mkdtempSync(join(tmpdir(), 'ecs-fake-qemu-'));
  const qmpPath = join(dir, 'qmp.sock');
  const vnc = new DemoVncServer({ name, password: unknowable(), width: 320, height: 200 });
  const { port } = await vnc.listen(0, '127.0.0.1');
  let expiryTimer: NodeJS.Timeout | undefined;
  const queue: net.Socket[] = [];
  const fake: FakeQemu = {
    vncPort: port, qmpPath, vnc, passwords: [], expiries: [], mode: 'ok',
    async stop() {
      clearTimeout(expiryTimer);
      for (const s of queue) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await vnc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const serve = (sock: net.Socket): void => {
    if (fake.mode === 'silent') return;
    sock.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } }) + '\r\n');
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const cmd = JSON.parse(line) as { execute: string; arguments?: Record<string, string>; id?: unknown };
        const answer = (body: object): void => void sock.write(JSON.stringify({ ...body, ...(cmd.id !== undefined ? { id: cmd.id } : {}) }) + '\r\n');
        if (cmd.execute === 'qmp_capabilities') {
          answer({ return: {} });
          continue;
        }
        if (fake.mode === 'slow') continue;
        if (fake.mode === 'refuse') {
          answer({ error: { class: 'GenericError', desc: 'Could not set password' } });
          continue;
        }
        // An event between commands, as QEMU sends them.
        sock.write(JSON.stringify({ event: 'VNC_CONNECTED', data: {}, timestamp: { seconds: 0, microseconds: 0 } }) + '\r\n');
        if (cmd.execute === 'set_password') {
          fake.passwords.push(cmd.arguments!['password']!);
          vnc.setPassword(cmd.arguments!['password']!);
          answer({ return: {} });
        } else if (cmd.execute === 'expire_password') {
          const time = cmd.arguments!['time']!;
          fake.expiries.push(time);
          clearTimeout(expiryTimer);
          if (time === 'now') vnc.setPassword(unknowable());
          else if (time.startsWith('+')) expiryTimer = setTimeout(() => vnc.setPassword(unknowable()), Number(time.slice(1)) * 1000).unref();
          answer({ return: {} });
        } else {
          answer({ error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` } });
        }
      }
    });
  };
  const server = net.createServer((sock) => {
    sock.on('error', () => sock.destroy());
    queue.push(sock);
    sock.once('close', () => {
      const i = queue.indexOf(sock);
      if (i !== -1) queue.splice(i, 1);
      if (i === 0 && queue[0]) serve(queue[0]);
    });
    if (queue.length === 1) serve(sock);
  });
  await new Promise<void>((resolve) => server.listen(qmpPath, resolve));
  return fake;
}
