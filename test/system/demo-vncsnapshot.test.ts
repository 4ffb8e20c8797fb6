/**
 * The demo VNC server against a real, independent RFB client: Debian's vncsnapshot (a TightVNC /
 * RealVNC 3.3 based viewer). It connects, captures the screen and writes a JPEG, which must show
 * text. This suite fails, not skips, when vncsnapshot or vncpasswd is missing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { DemoVncServer } from '../../src/demo/demo-vnc-server.js';

function tool(name: string): string {
  const path = `/usr/bin/${name}`;
  try {
    accessSync(path, fsConstants.X_OK);
  } catch {
    assert.fail(`${path} is missing: install Debian's ${name === 'vncpasswd' ? 'tigervnc-tools' : name} package`);
  }
  return path;
}

/** vncsnapshot takes a display number (port 5900 + N), so the server needs a port in that range. */
async function listenOnDisplay(t: TestContext, password?: string): Promise<{ display: number }> {
  for (let display = 40 + (process.pid % 50); display < 99; display++) {
    const server = new DemoVncServer({ name: 'snapshot-demo', password });
    try {
      await server.listen(5900 + display, '127.0.0.1');
      t.after(() => server.close());
      return { display };
    } catch {
      await server.close().catch(() => undefined);
    }
  }
  throw new Error('no free port between 5940 and 5999');
}

function run(file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** `vncpasswd -f` turns a plain password on stdin into the obfuscated password file format. */
function vncPasswordFile(dir: string, password: string): Promise<string> {
  const path = join(dir, 'passwd');
  return new Promise((resolve, reject) => {
    const child = spawn(tool('vncpasswd'), ['-f'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`vncpasswd -f exited with ${code}`));
      writeFileSync(path, Buffer.concat(out), { mode: 0o600 });
      resolve(path);
    });
    child.stdin.end(`${password}\n`);
  });
}

/** Decodes the JPEG and checks it is the 800x480 console with text on it. */
function assertShowsText(path: string): void {
  const img = jpeg.decode(readFileSync(path), { useTArray: true });
  assert.equal(img.width, 800);
  assert.equal(img.height, 480);
  let bright = 0;
  const colours = new Set<number>();
  for (let i = 0; i < img.data.length; i += 4) {
    const [r, g, b] = [img.data[i] ?? 0, img.data[i + 1] ?? 0, img.data[i + 2] ?? 0];
    if (r + g + b > 300) bright++;
    colours.add(((r >> 5) << 6) | ((g >> 5) << 3) | (b >> 5));
  }
  // Text on a dark background: some bright pixels, far from all of them, several colours.
  assert.ok(bright > 2000 && bright < (800 * 480) / 2, `${bright} bright pixels`);
  assert.ok(colours.size > 3, `${colours.size} colours`);
}

test('vncsnapshot captures the demo console (security None)', async (t) => {
  const vncsnapshot = tool('vncsnapshot');
  const dir = mkdtempSync(join(tmpdir(), 'demo-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { display } = await listenOnDisplay(t);
  const out = join(dir, 'none.jpg');
  await run(vncsnapshot, ['-quiet', `127.0.0.1:${display}`, out]);
  assertShowsText(out);
});

test('vncsnapshot captures the demo console with VNC authentication', async (t) => {
  const vncsnapshot = tool('vncsnapshot');
  const dir = mkdtempSync(join(tmpdir(), 'demo-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passwd = await vncPasswordFile(dir, 'snap-pw');
  const { display } = await listenOnDisplay(t, 'snap-pw');
  const out = join(dir, 'auth.jpg');
  await run(vncsnapshot, ['-quiet', '-passwd', passwd, `127.0.0.1:${display}`, out]);
  assertShowsText(out);
});

test('vncsnapshot with the wrong password gets no picture', async (t) => {
  const vncsnapshot = tool('vncsnapshot');
  const dir = mkdtempSync(join(tmpdir(), 'demo-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passwd = await vncPasswordFile(dir, 'not-it');
  const { display } = await listenOnDisplay(t, 'snap-pw');
  const out = join(dir, 'wrong.jpg');
  await assert.rejects(run(vncsnapshot, ['-quiet', '-passwd', passwd, `127.0.0.1:${display}`, out]));
  assert.throws(() => accessSync(out));
});
