/**
 * A minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec): connect to the monitor
 * (unix socket or TCP), read the greeting, `qmp_capabilities`, then one command at a time.
 * Every wait is bounded; failures are BackendError with failure `qmp` and a reason an operator can
 * act on. NOTE: command arguments (a password) never appear in an error or a log line.
 */
import { connect, type Socket } from 'node:net';
import { BackendError } from '../errors.js';
import { sanitizePeerText } from '../rfb/index.js';

/** Longest line accepted from the monitor (answers to our commands are a few hundred bytes). */
const MAX_LINE = 64 * 1024;

export interface QmpOptions {
  /** Limit of each step: connect, greeting, each command. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

type Reply = { return?: unknown; error?: { class?: unknown; desc?: unknown }; QMP?: unknown; event?: unknown; id?: unknown };

/** `unix:/path` -> path; `tcp:host:port` -> host and port (as inventory-service normalises them). */
function endpointOf(qmp: string): { path: string } | { host: string; port: number } {
  if (qmp.startsWith('unix:')) return { path: qmp.slice(5) };
  const m = /^tcp:(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(qmp);
  if (!m) throw new BackendError('BACKEND_UNREACHABLE', `QMP monitor address ${JSON.stringify(qmp)} is not unix:/path or tcp:host:port`, { failure: 'qmp' });
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

const qmpError = (code: 'BACKEND_UNREACHABLE' | 'BACKEND_AUTH_FAILED' | 'BACKEND_PROTOCOL', message: string, cause?: unknown): BackendError =>
  new BackendError(code, message, { failure: 'qmp', ...(cause === undefined ? {} : { cause }) });

export class QmpClient {
  private buf = '';
  private waiter: { resolve: (r: Reply) => void; reject: (e: unknown) => void } | null = null;
  private failed: BackendError | null = null;
  private nextId = 1;

  private constructor(private readonly sock: Socket, private readonly where: string, private readonly opts: QmpOptions) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (e: NodeJS.ErrnoException) => this.fail(qmpError('BACKEND_UNREACHABLE', `QMP monitor ${where}: ${e.code ?? e.message}`, e)));
    sock.on('close', () => this.fail(qmpError('BACKEND_UNREACHABLE', `QMP monitor ${where} closed the connection`)));
  }

  /**
   * Connects to the monitor, reads its greeting and enters command mode. QEMU's monitor serves one
   * client at a time: a monitor busy with another client does not greet, which times out here.
   */
  static async connect(qmp: string, opts: QmpOptions): Promise<QmpClient> {
    const ep = endpointOf(qmp);
    const sock = 'path' in ep ? connect({ path: ep.path }) : connect({ host: ep.host, port: ep.port });
    const client = new QmpClient(sock, qmp, opts);
    try {
      await client.step('connect', new Promise<void>((resolve, reject) => {
        sock.once('connect', () => resolve());
        sock.once('close', () => reject(client.failed ?? qmpError('BACKEND_UNREACHABLE', `QMP monitor ${qmp} closed the connection`)));
      }));
      const greeting = await client.step('greeting', client.next());
      if (greeting.QMP === undefined) throw qmpError('BACKEND_PROTOCOL', `QMP monitor ${qmp} did not greet as QMP`);
      await client.execute('qmp_capabilities');
      return client;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** Runs one command; resolves with its `return`, rejects with the monitor's error (class and description). */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    this.sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    for (;;) {
      const reply = await this.step(command, this.next());
      // Events (and anything not ours) are skipped.
      if (reply.id !== id) continue;
      if (reply.error !== undefined) {
        const cls = sanitizePeerText(Buffer.from(String(reply.error.class ?? 'Error')).subarray(0, 64));
        const desc = sanitizePeerText(Buffer.from(String(reply.error.desc ?? '')).subarray(0, 256));
        throw qmpError('BACKEND_AUTH_FAILED', `QMP ${command} refused by ${this.where}: ${cls}: ${desc}`);
      }
      return reply.return;
    }
  }

  close(): void {
    this.sock.destroy();
  }

  /** Waits for `p`, at most the step timeout, and not past the signal. */
  private step<T>(what: string, p: Promise<T>): Promise<T> {
    const { timeoutMs, signal } = this.opts;
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const timer = setTimeout(() => {
        finish();
        const busy = what === 'greeting' ? ' (is another client connected? QEMU\'s monitor serves one client at a time)' : '';
        const e = qmpError('BACKEND_UNREACHABLE', `QMP monitor ${this.where} did not answer ${what} within ${timeoutMs} ms${busy}`);
        this.fail(e);
        reject(e);
      }, timeoutMs);
      const onAbort = (): void => {
        finish();
        const e = new BackendError('BACKEND_UNREACHABLE', `QMP ${what} on ${this.where} abandoned`, { failure: 'timeout' });
        this.fail(e);
        reject(e);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      p.then((v) => {
        finish();
        resolve(v);
      }, (e: unknown) => {
        finish();
        reject(e);
      });
    });
  }

  /** The next JSON line from the monitor. */
  private next(): Promise<Reply> {
    if (this.failed) return Promise.reject(this.failed);
    const line = this.takeLine();
    if (line !== null) return Promise.resolve(line);
    return new Promise<Reply>((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private takeLine(): Reply | null {
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl === -1) return null;
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === '') continue;
      try {
        const v = JSON.parse(line) as unknown;
        if (v && typeof v === 'object' && !Array.isArray(v)) return v as Reply;
      } catch {
        // Answered below.
      }
      throw qmpError('BACKEND_PROTOCOL', `QMP monitor ${this.where} sent something that is not a JSON object`);
    }
  }

  private onData(d: string): void {
    this.buf += d;
    if (this.buf.length > MAX_LINE && this.buf.indexOf('\n') === -1) {
      this.fail(qmpError('BACKEND_PROTOCOL', `QMP monitor ${this.where} sent a line longer than ${MAX_LINE} bytes`));
      this.sock.destroy();
      return;
    }
    const w = this.waiter;
    if (!w) return;
    try {
      const line = this.takeLine();
      if (line === null) return;
      this.waiter = null;
      w.resolve(line);
    } catch (e) {
      this.waiter = null;
      this.fail(e as BackendError);
      w.reject(e);
    }
  }

  private fail(e: BackendError): void {
    this.failed ??= e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(this.failed);
  }
}
