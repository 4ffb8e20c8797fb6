/**
 * Test-only stand-in for the console proxy, so the page can be tested in a real browser before
 * the proxy exists: it mounts the real static handler, answers the pre-check from a per-token
 * script, and on `/websockify` speaks a minimal RFB 3.8 server (security None, ServerInit, Raw
 * framebuffer updates of a known pattern) that records what the browser sends.
 * It implements the proxy's contract with the page (docs/console-page.md), nothing more.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { createStaticHandler } from '../../src/web/static-handler.js';

/** Framebuffer of the fake server: four quadrants of known colours. */
export const FB_WIDTH = 320;
export const FB_HEIGHT = 240;
export type Rgb = readonly [number, number, number];
export const PATTERN = {
  topLeft: [255, 0, 0],
  topRight: [0, 255, 0],
  bottomLeft: [0, 0, 255],
  bottomRight: [255, 255, 255],
} as const satisfies Record<string, Rgb>;

/** Colour of the fake framebuffer at (x, y). */
export function patternAt(x: number, y: number): Rgb {
  const right = x >= FB_WIDTH / 2;
  const bottom = y >= FB_HEIGHT / 2;
  if (bottom) return right ? PATTERN.bottomRight : PATTERN.bottomLeft;
  return right ? PATTERN.topRight : PATTERN.topLeft;
}

/** What the WebSocket end does for one token. */
export type SessionScript =
  /** Full handshake, then serve the pattern and record input. */
  | { kind: 'serve' }
  /** Answer the upgrade with a plain HTTP status (what the proxy does for a bad token or Origin). */
  | { kind: 'refuse-upgrade'; status: number }
  /**
   * Fail the RFB security step with `reason`, then close the WebSocket with `code`. `at: 'types'`
   * sends an empty security-type list; `at: 'result'` offers None, then a failed SecurityResult.
   * Without `code` the server does not close: the browser does, and sees no code of ours.
   */
  | { kind: 'security-failure'; at: 'types' | 'result'; reason: string; code?: number; closeReason?: string };

export interface TokenScript {
  /** Pre-check answer. Default: 200 `{state:"valid", server:{name}}`. */
  info?: { status: number; body: unknown };
  /** Server name for the default pre-check answer and the RFB ServerInit. Default `web-01`. */
  name?: string;
  session?: SessionScript;
}

export interface KeyEventRecord {
  down: boolean;
  keysym: number;
}

/** One accepted WebSocket, as the fake RFB server saw it. */
export interface RfbSession {
  token: string;
  /** The Sec-WebSocket-Protocol the browser offered. */
  offeredProtocols: string;
  /** ClientInit shared-flag, once received. */
  shared: boolean | null;
  keyEvents: KeyEventRecord[];
  cutText: string[];
  framesSent: number;
  /** Resolves when the browser has completed the RFB handshake (ClientInit received). */
  initialized: Promise<void>;
  /** Closes the session from the server side with a WebSocket close code. */
  close(code: number, reason: string): void;
  /** Resolves once `pred` holds on the session, polling; rejects after `timeoutMs`. */
  waitFor(pred: (s: RfbSession) => boolean, what: string, timeoutMs?: number): Promise<void>;
}

/** One plain HTTP request the server received (upgrades are in `upgrades`). */
export interface RequestRecord {
  method: string;
  url: string;
  referer: string | undefined;
}

export interface BrowserTestServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** URL of the console page for `token`, as the API would build it. */
  pageUrl(token: string, lang?: string): string;
  setToken(token: string, script: TokenScript): void;
  /** Tokens of every `/api/console/info` request, in order. */
  readonly infoRequests: string[];
  /** Every plain HTTP request, in order (to check where the token travels). */
  readonly requests: RequestRecord[];
  /** Tokens of every `/websockify` upgrade attempt, accepted or not, in order. */
  readonly upgrades: string[];
  readonly sessions: RfbSession[];
  waitForSession(token: string, timeoutMs?: number): Promise<RfbSession>;
  close(): Promise<void>;
}

/** Caps on what the fake server buffers from a browser. */
const MAX_BUFFERED = 1024 * 1024;
const MAX_INFO_BODY = 4096;

export async function startBrowserTestServer(): Promise<BrowserTestServer> {
  const handleStatic = createStaticHandler();
  const scripts = new Map<string, TokenScript>();
  const infoRequests: string[] = [];
  const upgrades: string[] = [];
  const sessions: RfbSession[] = [];
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BUFFERED });

  const requests: RequestRecord[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', referer: req.headers.referer });
    if (handleStatic(req, res)) return;
    if (req.url === '/api/console/info' && req.method === 'POST') {
      void answerInfo(req, res);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found\n');
  });

  async function answerInfo(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) {
      body += String(chunk);
      if (body.length > MAX_INFO_BODY) {
        res.writeHead(413).end();
        return;
      }
    }
    let token = '';
    try {
      const parsed = JSON.parse(body) as { token?: unknown };
      if (typeof parsed.token === 'string') token = parsed.token;
    } catch {
      res.writeHead(400).end();
      return;
    }
    infoRequests.push(token);
    const script = scripts.get(token);
    const answer = script?.info ?? (script
      ? { status: 200, body: { state: 'valid', server: { name: script.name ?? 'web-01' }, expiresAt: new Date(Date.now() + 600_000).toISOString() } }
      : { status: 200, body: { state: 'unknown' } });
    res.writeHead(answer.status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(answer.body));
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const token = url.searchParams.get('token') ?? '';
    if (url.pathname !== '/websockify') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    upgrades.push(token);
    const script = scripts.get(token);
    const session = script?.session ?? { kind: 'serve' };
    if (!script || session.kind === 'refuse-upgrade') {
      const status = session.kind === 'refuse-upgrade' ? session.status : 403;
      socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sessions.push(runRfb(ws, token, String(req.headers['sec-websocket-protocol'] ?? ''), script.name ?? 'web-01', session));
    });
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    pageUrl: (token, lang = 'EN') => `${origin}/vnc_auto.html?token=${encodeURIComponent(token)}&lang=${encodeURIComponent(lang)}&tLength=70`,
    setToken: (token, script) => void scripts.set(token, script),
    infoRequests,
    requests,
    upgrades,
    sessions,
    async waitForSession(token, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = sessions.find((x) => x.token === token);
        if (s) return s;
        if (Date.now() > deadline) throw new Error('no WebSocket session arrived for the token');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface PixelFormat {
  bpp: number;
  bigEndian: boolean;
  trueColour: boolean;
  max: [number, number, number];
  shift: [number, number, number];
}

/** RFC 6143 7.4: 32 bpp, depth 24, little-endian, true colour, 8 bits per channel. */
const SERVER_PIXEL_FORMAT: PixelFormat = { bpp: 32, bigEndian: false, trueColour: true, max: [255, 255, 255], shift: [16, 8, 0] };

function encodePixelFormat(pf: PixelFormat): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(pf.bpp, 0);
  b.writeUInt8(24, 1);
  b.writeUInt8(pf.bigEndian ? 1 : 0, 2);
  b.writeUInt8(pf.trueColour ? 1 : 0, 3);
  pf.max.forEach((m, i) => b.writeUInt16BE(m, 4 + 2 * i));
  pf.shift.forEach((s, i) => b.writeUInt8(s, 10 + i));
  return b;
}

function decodePixelFormat(b: Buffer): PixelFormat {
  return {
    bpp: b.readUInt8(0),
    bigEndian: b.readUInt8(2) !== 0,
    trueColour: b.readUInt8(3) !== 0,
    max: [b.readUInt16BE(4), b.readUInt16BE(6), b.readUInt16BE(8)],
    shift: [b.readUInt8(10), b.readUInt8(11), b.readUInt8(12)],
  };
}

/** RFC 6143 7.6.1: one Raw rectangle covering the whole framebuffer, in the client's pixel format. */
function rawFrame(pf: PixelFormat): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt8(0, 0); // FramebufferUpdate
  header.writeUInt16BE(1, 2); // one rectangle
  header.writeUInt16BE(0, 4);
  header.writeUInt16BE(0, 6);
  header.writeUInt16BE(FB_WIDTH, 8);
  header.writeUInt16BE(FB_HEIGHT, 10);
  header.writeInt32BE(0, 12); // Raw
  const pixels = Buffer.alloc(FB_WIDTH * FB_HEIGHT * 4);
  for (let y = 0; y < FB_HEIGHT; y++) {
    for (let x = 0; x < FB_WIDTH; x++) {
      const rgb = patternAt(x, y);
      let v = 0;
      for (let c = 0; c < 3; c++) v |= Math.round((rgb[c]! * pf.max[c]!) / 255) << pf.shift[c]!;
      const off = (y * FB_WIDTH + x) * 4;
      if (pf.bigEndian) pixels.writeUInt32BE(v >>> 0, off);
      else pixels.writeUInt32LE(v >>> 0, off);
    }
  }
  return Buffer.concat([header, pixels]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** RFC 6143 7.1.3 / 7.2.2: a reason string is a u32 length then that many bytes. */
function reasonString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** Runs the server side of one RFB 3.8 session over `ws`. */
function runRfb(ws: WebSocket, token: string, offeredProtocols: string, name: string, script: SessionScript): RfbSession {
  let buf = Buffer.alloc(0);
  let step: 'version' | 'security' | 'client-init' | 'messages' | 'done' = 'version';
  let pf = SERVER_PIXEL_FORMAT;
  let markInitialized: () => void = () => {};
  const session: RfbSession = {
    token,
    offeredProtocols,
    shared: null,
    keyEvents: [],
    cutText: [],
    framesSent: 0,
    initialized: new Promise<void>((r) => (markInitialized = r)),
    close(code, reason) {
      step = 'done';
      ws.close(code, reason);
    },
    async waitFor(pred, what, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(session)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };

  const fail = (code: number, reason: string): void => session.close(code, reason);
  const failSecurity = (s: Extract<SessionScript, { kind: 'security-failure' }>): void => {
    if (s.code === undefined) step = 'done';
    else fail(s.code, s.closeReason ?? '');
  };

  /** Consumes and returns `n` bytes, or undefined when fewer are buffered. */
  const take = (n: number): Buffer | undefined => {
    if (buf.length < n) return undefined;
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };

  /** Handles whatever complete units are buffered; returns false when it needs more bytes. */
  const stepOnce = (): boolean => {
    switch (step) {
      case 'version': {
        const v = take(12);
        if (!v) return false;
        if (v.toString('latin1') !== 'RFB 003.008\n') {
          fail(4400, 'unsupported client version');
          return false;
        }
        if (script.kind === 'security-failure' && script.at === 'types') {
          // RFC 6143 7.1.2: zero security types, then a reason string.
          ws.send(Buffer.concat([Buffer.from([0]), reasonString(script.reason)]));
          failSecurity(script);
          return false;
        }
        ws.send(Buffer.from([1, 1])); // one security type: None
        step = 'security';
        return true;
      }
      case 'security': {
        const t = take(1);
        if (!t) return false;
        if (t[0] !== 1) {
          fail(4400, 'unsupported security type');
          return false;
        }
        if (script.kind === 'security-failure') {
          // RFC 6143 7.1.3: SecurityResult failed, then (3.8) a reason string.
          ws.send(Buffer.concat([u32(1), reasonString(script.reason)]));
          failSecurity(script);
          return false;
        }
        ws.send(u32(0));
        step = 'client-init';
        return true;
      }
      case 'client-init': {
        const s = take(1);
        if (!s) return false;
        session.shared = s[0] !== 0;
        // RFC 6143 7.3.2: ServerInit = width, height, pixel format, name.
        const head = Buffer.alloc(4);
        head.writeUInt16BE(FB_WIDTH, 0);
        head.writeUInt16BE(FB_HEIGHT, 2);
        ws.send(Buffer.concat([head, encodePixelFormat(pf), reasonString(name)]));
        step = 'messages';
        markInitialized();
        return true;
      }
      case 'messages':
        return clientMessage();
      case 'done':
        return false;
    }
  };

  /** RFC 6143 7.5: one client-to-server message. */
  const clientMessage = (): boolean => {
    const type = buf[0];
    if (type === undefined) return false;
    switch (type) {
      case 0: {
        const m = take(20); // SetPixelFormat: type, 3 padding, 16 pixel format
        if (!m) return false;
        pf = decodePixelFormat(m.subarray(4));
        if (pf.bpp !== 32 || !pf.trueColour) fail(4400, 'only 32 bpp true colour is supported here');
        return true;
      }
      case 2: {
        if (buf.length < 4) return false;
        const n = buf.readUInt16BE(2); // SetEncodings: type, padding, u16 count, s32 each
        return take(4 + 4 * n) !== undefined;
      }
      case 3: {
        const m = take(10); // FramebufferUpdateRequest
        if (!m) return false;
        // Incremental requests get nothing: the picture never changes, and answering each one
        // would spin the browser and this server.
        if (m[1] === 0 || session.framesSent === 0) {
          ws.send(rawFrame(pf));
          session.framesSent += 1;
        }
        return true;
      }
      case 4: {
        const m = take(8); // KeyEvent: type, down-flag, 2 padding, u32 key
        if (!m) return false;
        session.keyEvents.push({ down: m[1] !== 0, keysym: m.readUInt32BE(4) });
        return true;
      }
      case 5:
        return take(6) !== undefined; // PointerEvent
      case 6: {
        if (buf.length < 8) return false;
        const len = buf.readInt32BE(4); // ClientCutText: type, 3 padding, u32 length, text
        if (len < 0 || len > MAX_BUFFERED) {
          fail(4400, 'bad cut text length');
          return false;
        }
        const m = take(8 + len);
        if (!m) return false;
        session.cutText.push(m.subarray(8).toString('latin1'));
        return true;
      }
      default:
        fail(4400, 'unexpected client message');
        return false;
    }
  };

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || step === 'done') return;
    buf = Buffer.concat([buf, data]);
    if (buf.length > MAX_BUFFERED) {
      fail(4400, 'too much unread data');
      return;
    }
    while (stepOnce());
  });
  ws.on('error', () => {});
  ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
  return session;
}
