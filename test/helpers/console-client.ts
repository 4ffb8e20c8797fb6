/** Opening consoles the way a browser does: WebSocket to /websockify with the URL's token. */
import { WebSocket } from 'ws';
import { RfbTestClient, webSocketTransport, type RfbTestClientOptions, type RfbTransport } from './rfb-test-client.js';
import { ByteReader, clientHandshake } from '../../src/rfb/index.js';

/** The WebSocket URL the console page derives from a console URL. */
export function wsUrlOf(consoleUrl: string, tokenOverride?: string): string {
  const u = new URL(consoleUrl);
  const token = tokenOverride ?? u.searchParams.get('token') ?? '';
  return `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}/websockify?token=${encodeURIComponent(token)}`;
}

export function originOf(consoleUrl: string): string {
  return new URL(consoleUrl).origin;
}

export type OpenResult =
  | { ok: true; ws: WebSocket; transport: RfbTransport }
  | { ok: false; status: number; body: string };

/**
 * A transport over `ws` that keeps what arrives before anyone listens: the proxy speaks first,
 * and its first bytes can come in the same read as the 101 answer (a browser queues them too).
 */
export function bufferedTransport(ws: WebSocket): RfbTransport {
  const early: Buffer[] = [];
  let sink: ((b: Buffer) => void) | null = null;
  ws.on('message', (data) => {
    const b = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (sink) sink(b);
    else early.push(b);
  });
  const base = webSocketTransport(ws);
  return {
    write: base.write,
    onClose: base.onClose,
    close: base.close,
    onData: (cb) => {
      sink = cb;
      for (const b of early.splice(0)) cb(b);
    },
  };
}

/** Opens the WebSocket; resolves with it, or with the HTTP refusal (status and text). */
export function openWs(url: string, opts: { origin?: string | null; headers?: Record<string, string> } = {}): Promise<OpenResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], {
      ...(opts.origin === null ? {} : { origin: opts.origin ?? new URL(url.replace(/^ws/, 'http')).origin }),
      headers: opts.headers ?? {},
      handshakeTimeout: 5000,
      rejectUnauthorized: false,
    });
    const transport = bufferedTransport(ws);
    ws.once('open', () => resolve({ ok: true, ws, transport }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ ok: false, status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ ok: false, status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (e) => reject(e));
  });
}

/** Opens a console and completes the RFB handshake over it. */
export async function openConsole(consoleUrl: string, opts: RfbTestClientOptions & { origin?: string | null; headers?: Record<string, string> } = {}): Promise<{ ws: WebSocket; client: RfbTestClient; closed: Promise<{ code: number; reason: string }> }> {
  const r = await openWs(wsUrlOf(consoleUrl), opts);
  if (!r.ok) throw new Error(`console refused: ${r.status} ${r.body}`);
  const closed = closeOf(r.ws);
  const client = await RfbTestClient.connect(r.transport, opts);
  return { ws: r.ws, client, closed };
}

/** Resolves with the close code and reason the server sent. */
export function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
}

/**
 * Opens a console expected to fail after the upgrade: returns the RFB failure reason the
 * handshake got and the WebSocket close code and reason.
 */
export async function consoleFailure(consoleUrl: string): Promise<{ rfbError: string; code: number; reason: string }> {
  const r = await openWs(wsUrlOf(consoleUrl));
  if (!r.ok) throw new Error(`console refused before the upgrade: ${r.status} ${r.body}`);
  const closed = closeOf(r.ws);
  const reader = new ByteReader();
  const t = r.transport;
  t.onData((b) => reader.push(b));
  t.onClose(() => reader.end());
  let rfbError = '';
  try {
    await clientHandshake(reader, (b) => t.write(b), { signal: AbortSignal.timeout(10_000) });
    rfbError = '(handshake succeeded)';
  } catch (e) {
    rfbError = (e as Error).message;
  }
  return { rfbError, ...(await closed) };
}
