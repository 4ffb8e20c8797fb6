/**
 * libvirt through `virsh` (Debian's libvirt-clients): the domain's live XML for its VNC address,
 * and `update-device --live` for a one-time VNC password (graphics `passwd` and `passwdValidTo`,
 * which libvirt applies with QMP set_password and expire_password).
 *
 * Why virsh and not a binding: the Node bindings on npm are native addons (built against
 * libvirt's headers at install time) with little upkeep, while virsh ships with libvirt itself, is
 * versioned with the daemon, and needs nothing at install. Two calls per session are all we make;
 * a process each costs tens of milliseconds. Arguments go as an argv array (no shell), the domain
 * and URI are validated by the inventory (no leading dash), and the password travels in the
 * device XML through a FIFO, never in argv (visible in ps) nor in a file's contents.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendError } from '../errors.js';
import { sanitizePeerText } from '../rfb/index.js';

/** Most output read from one virsh call (a domain's XML is a few KiB). */
const MAX_OUTPUT = 1024 * 1024;

/** The VNC graphics device of a running domain, from its live XML. */
export class VncGraphics {
  constructor(
    /** The element as libvirt wrote it (start tag and children), without passwd/passwdValidTo. */
    private readonly element: string,
    /** The listen address libvirt reports ('' when none). */
    readonly listen: string,
    readonly port: number,
  ) {}

  /**
   * Where the proxy connects: the listen address, or for a wildcard (or none) the libvirt host of
   * the URI (127.0.0.1 for a local URI).
   */
  host(uri: string): string {
    if (this.listen !== '' && this.listen !== '0.0.0.0' && this.listen !== '::') return this.listen;
    try {
      return new URL(uri).hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    } catch {
      return '127.0.0.1';
    }
  }

  /** The same device with a password and its expiry (libvirt: UTC, `YYYY-MM-DDTHH:MM:SS`). */
  withPassword(password: string, validToMs: number): string {
    const validTo = new Date(Math.max(1000, validToMs)).toISOString().slice(0, 19);
    // NOTE: a replacer function: in a replacement string, `$&` or `$'` in the password would be patterns.
    return this.element.replace(/^<graphics\b/, () => `<graphics passwd='${xmlEscape(password)}' passwdValidTo='${validTo}'`);
  }
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function xmlUnescape(s: string): string {
  return s.replace(/&(?:#(\d+)|#x([0-9a-fA-F]+)|(lt|gt|amp|apos|quot));/g, (_, d: string, h: string, n: string) =>
    d ? String.fromCharCode(Number(d)) : h ? String.fromCharCode(parseInt(h, 16)) : ({ lt: '<', gt: '>', amp: '&', apos: '\'', quot: '"' } as Record<string, string>)[n]!);
}

/** Attributes of a start tag (libvirt writes them single-quoted; double quotes are accepted too). */
function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of tag.matchAll(/([A-Za-z_][-A-Za-z0-9_.:]*)\s*=\s*(?:'([^']*)'|"([^"]*)")/g)) out.set(m[1]!, xmlUnescape(m[2] ?? m[3] ?? ''));
  return out;
}

/**
 * The first VNC graphics device of a domain's live XML, or null. libvirt writes it as
 * `<graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>` with `<listen .../>`
 * children (or self-closed).
 */
export function parseVncGraphics(xml: string): VncGraphics | null {
  for (const m of xml.matchAll(/<graphics\b[^>]*?(\/>|>[\s\S]*?<\/graphics>)/g)) {
    const element = m[0];
    const startTag = /^<graphics\b[^>]*>/.exec(element)![0];
    const a = attributes(startTag);
    if (a.get('type') !== 'vnc') continue;
    const listenChild = /<listen\b[^>]*>/.exec(element.slice(startTag.length));
    const child = listenChild ? attributes(listenChild[0]) : new Map<string, string>();
    if (child.get('type') === 'socket' || a.has('socket')) {
      throw new BackendError('BACKEND_UNREACHABLE', 'the domain\'s VNC server listens on a unix socket; give it a listen address the proxy can reach', { failure: 'libvirt' });
    }
    const listen = a.get('listen') ?? child.get('address') ?? '';
    const port = Number(a.get('port') ?? '-1');
    // Without passwd/passwdValidTo: ours replace them.
    const clean = element.replace(startTag, () => startTag.replace(/\s+passwd(?:ValidTo)?\s*=\s*(?:'[^']*'|"[^"]*")/g, ''));
    return new VncGraphics(clean, listen, Number.isInteger(port) ? port : -1);
  }
  return null;
}

/** virsh against one connection URI; each call bounded by `timeoutMs` and the signal. */
export class Virsh {
  constructor(private readonly bin: string, private readonly uri: string, private readonly timeoutMs: number, private readonly signal: AbortSignal) {}

  /** The running domain's VNC device (its live XML: the port libvirt chose). */
  async vncGraphics(domain: string): Promise<VncGraphics> {
    const xml = await this.run(['dumpxml', '--domain', domain]);
    const g = parseVncGraphics(xml);
    if (!g) throw new BackendError('BACKEND_UNREACHABLE', `libvirt domain ${domain} has no VNC graphics device`, { failure: 'libvirt' });
    if (g.port <= 0) throw new BackendError('BACKEND_UNREACHABLE', `libvirt domain ${domain} has no VNC port (is it running?)`, { failure: 'libvirt' });
    return g;
  }

  /** Sets the VNC password and its expiry on the running domain (`update-device --live`, the XML through a FIFO). */
  async setVncPassword(domain: string, g: VncGraphics, password: string, validToMs: number): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'ecs-console-virsh-'));
    const fifo = join(dir, 'device.xml');
    try {
      await new Promise<void>((resolve, reject) => execFile('mkfifo', ['-m', '600', fifo], (e) => (e ? reject(new BackendError('BACKEND_UNREACHABLE',
        `cannot make a FIFO for virsh: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { failure: 'libvirt', cause: e })) : resolve())));
      const xml = g.withPassword(password, validToMs);
      await this.run(['update-device', '--domain', domain, '--file', fifo, '--live'], (exited) => feedFifo(fifo, xml, exited));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private run(args: string[], feed?: (exited: () => boolean) => Promise<void>): Promise<string> {
    const what = `virsh ${args[0]}`;
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) return reject(new BackendError('BACKEND_UNREACHABLE', `${what} abandoned`, { failure: 'timeout' }));
      const child = spawn(this.bin, ['--quiet', '-c', this.uri, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      let out = '';
      let err = '';
      let settled = false;
      const finish = (e: BackendError | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.signal.removeEventListener('abort', onAbort);
        if (e) {
          child.kill('SIGKILL');
          reject(e);
        } else resolve(out);
      };
      const onAbort = (): void => finish(new BackendError('BACKEND_UNREACHABLE', `${what} abandoned`, { failure: 'timeout' }));
      const timer = setTimeout(() => finish(new BackendError('BACKEND_UNREACHABLE', `${what} did not finish within ${this.timeoutMs} ms (libvirt ${this.uri})`, { failure: 'libvirt' })), this.timeoutMs);
      this.signal.addEventListener('abort', onAbort, { once: true });
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.length > MAX_OUTPUT) finish(new BackendError('BACKEND_PROTOCOL', `${what} printed more than ${MAX_OUTPUT} bytes`, { failure: 'libvirt' }));
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        if (err.length < 4096) err += d;
      });
      child.on('error', (e: NodeJS.ErrnoException) => finish(new BackendError('BACKEND_UNREACHABLE',
        e.code === 'ENOENT' ? `${this.bin} is not installed (Debian package libvirt-clients)` : `cannot run ${this.bin}: ${e.code ?? e.message}`, { failure: 'libvirt', cause: e })));
      feed?.(() => settled || child.exitCode !== null || child.signalCode !== null).catch((e: unknown) => finish(e instanceof BackendError ? e
        : new BackendError('BACKEND_UNREACHABLE', `cannot pass the device XML to virsh: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { failure: 'libvirt', cause: e })));
      child.on('close', (code) => {
        if (code === 0) return finish(null);
        const words = sanitizePeerText(Buffer.from(err.trim().replace(/\s*\n\s*/g, '; ')).subarray(0, 300));
        // virsh says "failed to connect to the hypervisor" or "failed to get domain" when it cannot reach them.
        const unreachable = /failed to connect|failed to get domain|not running|no domain with matching/i.test(err);
        finish(new BackendError(unreachable ? 'BACKEND_UNREACHABLE' : 'BACKEND_AUTH_FAILED', `${what} failed (libvirt ${this.uri}): ${words || `exit ${code}`}`, { failure: 'libvirt' }));
      });
    });
  }
}

/**
 * Writes `data` into the FIFO once virsh has opened it for reading, then closes it (virsh reads
 * the data, then end of file). NOTE: the password goes through the kernel's pipe buffer only,
 * never into a file's contents; the FIFO sits in a private directory (0700, mode 0600). Opened
 * non-blocking (ENXIO until a reader is there, tried again every 5 ms), so that a virsh that dies
 * before opening it leaves nothing waiting.
 */
async function feedFifo(fifo: string, data: string, exited: () => boolean): Promise<void> {
  for (;;) {
    let w: number;
    try {
      w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
      if (exited()) return;
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    try {
      // A few hundred bytes: far below the pipe's 64 KiB, so one non-blocking write takes it all.
      writeSync(w, data);
    } finally {
      closeSync(w);
    }
    return;
  }
}
