/**
 * An RFB client for tests and benchmarks, over any byte transport (TCP socket, WebSocket).
 * It does the handshake with src/rfb's clientHandshake, asks for 32 bpp little-endian true colour,
 * keeps an RGB888 copy of the screen (Raw, CopyRect, ZRLE, DesktopSize), counts bytes, and by
 * default asks for the next incremental update after each one, as noVNC does.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { WebSocket } from 'ws';
import { ByteReader, ConnectionClosedError } from '../../src/rfb/byte-reader.js';
import { clientHandshake, type ClientHandshakeResult } from '../../src/rfb/client-handshake.js';
import {
  encodeClientCutText,
  encodeFramebufferUpdateRequest,
  encodeKeyEvent,
  encodePointerEvent,
  encodeSetEncodings,
  encodeSetPixelFormat,
} from '../../src/rfb/client-messages.js';
import { Encoding, ServerMessageType } from '../../src/rfb/constants.js';
import type { RfbVersion } from '../../src/rfb/handshake-messages.js';
import { PixelConverter, RGB888_PIXEL_FORMAT, type PixelFormat } from '../../src/rfb/pixel-format.js';
import { RECTANGLE_HEADER_LENGTH, decodeRectangleHeader, type RectangleHeader } from '../../src/rfb/server-messages.js';
import { ZrleDecoder } from './rfb-zrle-decoder.js';

/** A byte transport the client runs over. */
export interface RfbTransport {
  write(buf: Buffer): void;
  onData(cb: (b: Buffer) => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

/** Adapts a connected (or connecting) TCP socket. */
export function socketTransport(sock: net.Socket): RfbTransport {
  return {
    write: (b) => void sock.write(b),
    onData: (cb) => void sock.on('data', cb),
    onClose: (cb) => void sock.on('close', cb),
    close: () => void sock.destroy(),
  };
}

/** Adapts a `ws` WebSocket carrying RFB in binary messages (what noVNC does). */
export function webSocketTransport(ws: WebSocket): RfbTransport {
  return {
    write: (b) => ws.send(b, { binary: true }),
    onData: (cb) =>
      void ws.on('message', (data) => {
        if (Buffer.isBuffer(data)) cb(data);
        else if (Array.isArray(data)) cb(Buffer.concat(data));
        else cb(Buffer.from(data));
      }),
    onClose: (cb) => void ws.on('close', cb),
    close: () => ws.close(),
  };
}

/** 32 bits a pixel, depth 24, little-endian, 0x00RRGGBB. */
export const TEST_CLIENT_PIXEL_FORMAT: PixelFormat = RGB888_PIXEL_FORMAT;

/** Options of {@link RfbTestClient.connect}. */
export interface RfbTestClientOptions {
  password?: string;
  maxVersion?: RfbVersion;
  shared?: boolean;
  /** SetEncodings list; default ZRLE, CopyRect, Raw. */
  encodings?: number[];
  /** Default {@link TEST_CLIENT_PIXEL_FORMAT}. */
  pixelFormat?: PixelFormat;
  /** Ask for the next incremental update after each update; default true. */
  autoRequest?: boolean;
  /** Handshake timeout; default 5 s. */
  handshakeTimeoutMs?: number;
}

/** One FramebufferUpdate as received. */
export interface UpdateInfo {
  rects: RectangleHeader[];
  /** Bytes of the whole message. */
  bytes: number;
}

const MAX_READ = 64 * 1024 * 1024;

export class RfbTestClient {
  /** What the handshake learned (version, offered security types, ServerInit). */
  readonly handshake: ClientHandshakeResult;
  width: number;
  height: number;
  /** RGB888 copy of the remote screen. */
  private fb: Uint32Array;
  /** All bytes received, handshake included. */
  get bytesReceived(): number {
    return this.counter.bytes;
  }
  updateCount = 0;
  /** Rectangles of the most recent FramebufferUpdate. */
  rectsOfLastUpdate: RectangleHeader[] = [];
  bells = 0;
  cutTexts: Buffer[] = [];
  /** Why the message loop stopped, when it was not a plain close. */
  error: Error | undefined;
  /** Resolves when the transport has closed. */
  readonly closed: Promise<void>;

  private pixelFormat: PixelFormat;
  private converter: PixelConverter;
  private readonly zrle = new ZrleDecoder();
  private waiters: Array<{ resolve: (u: UpdateInfo) => void; reject: (e: Error) => void }> = [];
  private isClosed = false;

  private constructor(
    private readonly transport: RfbTransport,
    private readonly reader: ByteReader,
    private readonly counter: { bytes: number },
    handshake: ClientHandshakeResult,
    closed: Promise<void>,
    private readonly opts: RfbTestClientOptions,
  ) {
    this.handshake = handshake;
    this.width = handshake.serverInit.width;
    this.height = handshake.serverInit.height;
    this.fb = new Uint32Array(this.width * this.height);
    this.pixelFormat = opts.pixelFormat ?? TEST_CLIENT_PIXEL_FORMAT;
    this.converter = new PixelConverter(this.pixelFormat);
    this.closed = closed;
    void closed.then(() => {
      this.isClosed = true;
      this.zrle.close();
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(new Error('connection closed'));
    });
  }

  /** Handshakes over `transport`, sets pixel format and encodings, asks for the whole screen. */
  static async connect(transport: RfbTransport, opts: RfbTestClientOptions = {}): Promise<RfbTestClient> {
    const reader = new ByteReader({ maxReadLength: MAX_READ });
    const counter = { bytes: 0 };
    const closed = new Promise<void>((resolve) =>
      transport.onClose(() => {
        reader.end();
        resolve();
      }),
    );
    transport.onData((b) => {
      counter.bytes += b.length;
      reader.push(b);
    });
    let handshake: ClientHandshakeResult;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error('handshake timeout')), opts.handshakeTimeoutMs ?? 5000);
    try {
      handshake = await clientHandshake(reader, (b) => transport.write(b), {
        password: opts.password,
        maxVersion: opts.maxVersion,
        shared: opts.shared,
        signal: timeout.signal,
      });
    } catch (err) {
      transport.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    const client = new RfbTestClient(transport, reader, counter, handshake, closed, opts);
    transport.write(encodeSetPixelFormat(client.pixelFormat));
    transport.write(encodeSetEncodings(opts.encodings ?? [Encoding.ZRLE, Encoding.CopyRect, Encoding.Raw]));
    client.requestUpdate(false);
    void client.loop();
    return client;
  }

  /** Connects over TCP, then {@link connect}. */
  static async connectTcp(port: number, host = '127.0.0.1', opts: RfbTestClientOptions = {}): Promise<RfbTestClient> {
    const sock = net.connect(port, host);
    await once(sock, 'connect');
    return RfbTestClient.connect(socketTransport(sock), opts);
  }

  get offeredSecurityTypes(): number[] {
    return this.handshake.offeredSecurityTypes;
  }

  get name(): string {
    return this.handshake.serverInit.name;
  }

  /** The RGB888 colour (0xRRGGBB) at (x, y) of our copy of the screen. */
  getPixel(x: number, y: number): number {
    return this.fb[y * this.width + x] ?? 0;
  }

  /** Counts how many pixels of the rectangle are not `colour`. */
  countPixelsNot(colour: number, x = 0, y = 0, width = this.width, height = this.height): number {
    let n = 0;
    for (let row = y; row < y + height; row++) for (let col = x; col < x + width; col++) if (this.getPixel(col, row) !== colour) n++;
    return n;
  }

  /** A copy of our RGB888 screen. */
  snapshot(): Uint32Array {
    return this.fb.slice();
  }

  /** Resolves with the next complete FramebufferUpdate; rejects on timeout or when the connection closes. */
  waitForUpdate(timeoutMs = 5000): Promise<UpdateInfo> {
    if (this.isClosed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no FramebufferUpdate within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        resolve: (u: UpdateInfo): void => {
          clearTimeout(timer);
          resolve(u);
        },
        reject: (e: Error): void => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Waits for updates until `predicate()` holds. */
  async waitUntil(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('condition not met in time');
      await this.waitForUpdate(left);
    }
  }

  sendKey(keysym: number, down: boolean): void {
    this.transport.write(encodeKeyEvent(keysym, down));
  }

  /** Presses and releases the key of each character (printable ASCII keysyms equal the code). */
  typeText(text: string): void {
    for (const ch of text) {
      const keysym = ch.codePointAt(0) ?? 0;
      this.sendKey(keysym, true);
      this.sendKey(keysym, false);
    }
  }

  sendPointer(buttonMask: number, x: number, y: number): void {
    this.transport.write(encodePointerEvent(buttonMask, x, y));
  }

  sendCutText(text: string): void {
    this.transport.write(encodeClientCutText(Buffer.from(text, 'latin1')));
  }

  requestUpdate(incremental: boolean, x = 0, y = 0, width = this.width, height = this.height): void {
    this.transport.write(encodeFramebufferUpdateRequest(incremental, x, y, width, height));
  }

  /** Writes bytes as they are (for malformed-input tests). */
  sendRaw(buf: Buffer): void {
    this.transport.write(buf);
  }

  close(): void {
    this.transport.close();
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        const type = await this.reader.readU8();
        switch (type) {
          case ServerMessageType.FramebufferUpdate:
            await this.readUpdate();
            break;
          case ServerMessageType.SetColourMapEntries: {
            const head = await this.reader.readExactly(5);
            await this.reader.readExactly(6 * head.readUInt16BE(3));
            break;
          }
          case ServerMessageType.Bell:
            this.bells++;
            break;
          case ServerMessageType.ServerCutText: {
            const head = await this.reader.readExactly(7);
            this.cutTexts.push(await this.reader.readExactly(Math.abs(head.readInt32BE(3))));
            break;
          }
          default:
            throw new Error(`unknown server message type ${type}`);
        }
      }
    } catch (err) {
      if (!(err instanceof ConnectionClosedError)) {
        this.error = err as Error;
        this.transport.close();
      }
    }
  }

  private async readUpdate(): Promise<void> {
    const start = this.counter.bytes - this.reader.bufferedLength - 1;
    const count = (await this.reader.readExactly(3)).readUInt16BE(1);
    const rects: RectangleHeader[] = [];
    for (let i = 0; i < count; i++) {
      const r = decodeRectangleHeader(await this.reader.readExactly(RECTANGLE_HEADER_LENGTH));
      rects.push(r);
      await this.readRect(r);
    }
    const info = { rects, bytes: this.counter.bytes - this.reader.bufferedLength - start };
    this.updateCount++;
    this.rectsOfLastUpdate = rects;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(info);
    if ((this.opts.autoRequest ?? true) && !this.isClosed) this.requestUpdate(true);
  }

  private async readRect(r: RectangleHeader): Promise<void> {
    switch (r.encoding) {
      case Encoding.Raw: {
        this.checkBounds(r);
        const bpp = this.converter.bytesPerPixel;
        const data = await this.reader.readExactly(r.width * r.height * bpp);
        for (let row = 0; row < r.height; row++) {
          for (let col = 0; col < r.width; col++) {
            this.fb[(r.y + row) * this.width + r.x + col] = this.converter.unpack(this.converter.read(data, (row * r.width + col) * bpp));
          }
        }
        return;
      }
      case Encoding.CopyRect: {
        this.checkBounds(r);
        const src = await this.reader.readExactly(4);
        const sx = src.readUInt16BE(0);
        const sy = src.readUInt16BE(2);
        this.checkBounds({ ...r, x: sx, y: sy });
        const copy = new Uint32Array(r.width * r.height);
        for (let row = 0; row < r.height; row++) copy.set(this.fb.subarray((sy + row) * this.width + sx, (sy + row) * this.width + sx + r.width), row * r.width);
        this.blit(r, copy);
        return;
      }
      case Encoding.ZRLE: {
        this.checkBounds(r);
        const length = await this.reader.readU32();
        const pixels = await this.zrle.decodeRect(await this.reader.readExactly(length), r.width, r.height, this.pixelFormat);
        this.blit(r, pixels);
        return;
      }
      case Encoding.DesktopSize:
        // RFC 6143 7.8.2: the new size is the rectangle's width and height.
        this.width = r.width;
        this.height = r.height;
        this.fb = new Uint32Array(r.width * r.height);
        return;
      default:
        throw new Error(`rectangle with unexpected encoding ${r.encoding}`);
    }
  }

  private checkBounds(r: { x: number; y: number; width: number; height: number }): void {
    if (r.x + r.width > this.width || r.y + r.height > this.height) {
      throw new Error(`rectangle ${r.width}x${r.height}+${r.x}+${r.y} outside the ${this.width}x${this.height} screen`);
    }
  }

  private blit(r: RectangleHeader, pixels: Uint32Array): void {
    for (let row = 0; row < r.height; row++) this.fb.set(pixels.subarray(row * r.width, (row + 1) * r.width), (r.y + row) * this.width + r.x);
  }
}
