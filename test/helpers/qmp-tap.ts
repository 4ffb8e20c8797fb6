/**
 * A unix socket relay in front of a QMP monitor that writes down what the console service sends
 * (the one-time passwords it sets, the expiries): so that a test knows each password used and can
 * look for it in the store and the log, and try it itself after its expiry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface QmpTap {
  /** Where the service connects (the target's QMP address). */
  readonly path: string;
  /** Every command the service sent, in order. */
  readonly commands: Array<{ execute: string; arguments?: Record<string, string> }>;
  /** The passwords of every set_password. */
  passwords(): string[];
  stop(): Promise<void>;
}

export async function startQmpTap(upstream: string): Promise<QmpTap> {
  const dir = mkdtempSync(join(tmpdir(), 'ecs-qmp-tap-'));
  const path = join(dir, 'tap.sock');
  const commands: QmpTap['commands'] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(upstream);
    open.add(client);
    open.add(up);
    let buf = '';
    client.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) commands.push(JSON.parse(line) as QmpTap['commands'][number]);
      }
      up.write(d);
    });
    up.on('data', (d: Buffer) => client.write(d));
    const end = (): void => {
      client.destroy();
      up.destroy();
      open.delete(client);
      open.delete(up);
    };
    client.on('close', end);
    up.on('close', end);
    client.on('error', end);
    up.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    commands,
    passwords: () => commands.filter((c) => c.execute === 'set_password').map((c) => c.arguments!['password']!),
    async stop() {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
