/**
 * Real VNC servers for system tests: TigerVNC's Xvnc (password file from vncpasswd) and QEMU's
 * VNC server (password set over QMP). Missing binaries fail the test with the package to install.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

/** Asserts an executable exists (system suites fail, never skip, when a package is missing). */
export function requireBinary(path: string, pkg: string): string {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    assert.fail(`${path} is missing: install the Debian package ${pkg}`);
  }
  return path;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Waits until something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer | string } = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    // A program that does not read its input (xsetroot) may exit first: EPIPE is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

export interface RealVnc {
  port: number;
  stop(): Promise<void>;
}

export interface XvncServer extends RealVnc {
  display: number;
  /** Paints the root window (e.g. `red`, `#00ff00`). */
  paint(colour: string): Promise<void>;
}

/** Starts Xvnc with VNC authentication on a free display and port. */
export async function startXvnc(password: string, geometry = '640x480'): Promise<XvncServer> {
  const xvnc = requireBinary('/usr/bin/Xvnc', 'tigervnc-standalone-server');
  const vncpasswd = requireBinary('/usr/bin/vncpasswd', 'tigervnc-tools');
  requireBinary('/usr/bin/xsetroot', 'x11-xserver-utils');
  const dir = mkdtempSync(join(tmpdir(), 'ecs-xvnc-'));
  const pw = await run(vncpasswd, ['-f'], { input: password + '\n' });
  assert.equal(pw.code, 0, `vncpasswd -f failed: ${pw.stderr}`);
  const passwordFile = join(dir, 'passwd');
  writeFileSync(passwordFile, pw.stdout, { mode: 0o600 });
  const port = await freePort();
  let display = 50 + (process.pid % 200);
  while (existsSync(`/tmp/.X${display}-lock`) || existsSync(`/tmp/.X11-unix/X${display}`)) display++;
  const child = spawn(xvnc, [`:${display}`, '-rfbport', String(port), '-localhost', '-SecurityTypes', 'VncAuth', '-PasswordFile', passwordFile,
    '-geometry', geometry, '-depth', '24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port);
  } catch (e) {
    await stopChild(child);
    throw new Error(`Xvnc did not start: ${(e as Error).message}\n${stderr}`);
  }
  return {
    port,
    display,
    async paint(colour) {
      const r = await run('/usr/bin/xsetroot', ['-solid', colour], { env: { ...process.env, DISPLAY: `:${display}` } });
      assert.equal(r.code, 0, `xsetroot failed: ${r.stderr}`);
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts QEMU with no guest (SeaBIOS on screen) and a VNC password set over QMP. */
export async function startQemu(password: string): Promise<RealVnc> {
  const vm = await startQemuVm();
  try {
    await qmpSetPassword(vm.qmpPath, password);
  } catch (e) {
    await vm.stop();
    throw e;
  }
  return vm;
}

export interface QemuVm extends RealVnc {
  /** The QMP monitor for the console service (one client at a time, as QEMU's are). */
  qmpPath: string;
  /** A second QMP monitor, the test's own: one command, its `return`. */
  query(command: string, args?: Record<string, unknown>): Promise<unknown>;
}

/**
 * Starts QEMU (TCG, no guest: SeaBIOS on screen) with VNC password authentication on a free
 * display, a QMP monitor for the service and one for the test; with `tlsDir`, VNC requires TLS
 * with client certificates (tls-creds-x509, verify-peer=on). No password is set: VNC refuses
 * everyone until one is.
 */
export async function startQemuVm(opts: { tlsDir?: string } = {}): Promise<QemuVm> {
  const qemu = requireBinary('/usr/bin/qemu-system-x86_64', 'qemu-system-x86');
  const dir = mkdtempSync(join(tmpdir(), 'ecs-qemu-'));
  const qmp = join(dir, 'qmp.sock');
  const monitor = join(dir, 'test-qmp.sock');
  // QEMU takes a display number: port 5900 + N. Find a free one.
  let display = 0;
  for (let d = 20 + (process.pid % 60); d < 99; d++) {
    const probe = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(5900 + d, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (probe) {
      display = d;
      break;
    }
  }
  assert.ok(display > 0, 'no free VNC display for QEMU');
  const tls = opts.tlsDir ? ['-object', `tls-creds-x509,id=tls0,dir=${opts.tlsDir},endpoint=server,verify-peer=on`] : [];
  const child = spawn(qemu, ['-display', 'none', '-nodefaults', '-vga', 'std', '-m', '64', '-machine', 'accel=tcg', ...tls,
    '-vnc', `127.0.0.1:${display},password=on${opts.tlsDir ? ',tls-creds=tls0' : ''}`, '-qmp', `unix:${qmp},server,nowait`, '-qmp', `unix:${monitor},server,nowait`],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = 5900 + display;
  try {
    await waitForPort(port);
    await qmpCommands(qmp, []);
  } catch (e) {
    await stopChild(child);
    throw new Error(`QEMU did not start: ${(e as Error).message}\n${stderr}`);
  }
  return {
    port,
    qmpPath: qmp,
    async query(command, args) {
      return (await qmpCommands(monitor, [{ execute: command, ...(args ? { arguments: args } : {}) }]))[0];
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** QMP: greeting, qmp_capabilities, set_password (QEMU docs: qapi/ui.json). */
async function qmpSetPassword(socketPath: string, password: string): Promise<void> {
  await qmpCommands(socketPath, [{ execute: 'set_password', arguments: { protocol: 'vnc', password } }]);
}

/** QMP: waits for the socket, greeting, qmp_capabilities, then each command; their `return`s. */
async function qmpCommands(socketPath: string, commands: Array<{ execute: string; arguments?: unknown }>): Promise<unknown[]> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(socketPath)) {
    if (Date.now() > deadline) throw new Error('QMP socket did not appear');
    await new Promise((r) => setTimeout(r, 50));
  }
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    const out: unknown[] = [];
    let buf = '';
    let step = -1;
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        if (msg.event) continue;
        if (msg.error) {
          s.destroy();
          return reject(new Error(`QMP: ${msg.error.desc}`));
        }
        if (step === -1 && msg.QMP) {
          step = 0;
          s.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
          continue;
        }
        if (step > 0) out.push(msg.return);
        if (step === commands.length) {
          s.end();
          return resolve(out);
        }
        s.write(JSON.stringify(commands[step]) + '\n');
        step++;
      }
    });
    s.on('error', reject);
  });
}
