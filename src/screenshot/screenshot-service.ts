/**
 * Console screenshots (our extension of the ECS API, not a Huawei call): connects to a server's
 * VNC console as an RFB client through the same backend drivers as the proxy (so qemu-qmp and
 * libvirt targets get their one-time password), asks for one full update in encodings we decode,
 * and encodes the framebuffer as PNG (pngjs) or JPEG (jpeg-js).
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { BackendOpener } from '../backends/types.js';
import type { Clock } from '../clock.js';
import { BackendError, ConsoleError, RateLimitedError, ServerNotActiveError, ServerNotFoundError } from '../errors.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import { ByteReader, encodeFramebufferUpdateRequest, encodeSetEncodings, encodeSetPixelFormat } from '../rfb/index.js';
import { RateLimiter } from '../util/rate-limiter.js';
import { FramebufferDecoder, SCREENSHOT_ENCODINGS, SCREENSHOT_PIXEL_FORMAT } from './framebuffer-decoder.js';

export type ScreenshotFormat = 'png' | 'jpeg';

export interface Screenshot {
  readonly format: ScreenshotFormat;
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

/** RGB888 pixels of a screen (0xRRGGBB, row-major). */
export interface Frame {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint32Array;
}

export interface ScreenshotOptions {
  /** Screenshots of one server per window (per node). */
  readonly perServerLimit: number;
  readonly perServerWindowMs: number;
  /** The whole attempt: connect, authenticate, one full screen. */
  readonly timeoutMs: number;
  /** JPEG quality 1-100. */
  readonly jpegQuality: number;
}

/** At most this many FramebufferUpdates are read waiting for a full screen. */
const MAX_UPDATES = 8;

export class ScreenshotService {
  private readonly limiter: RateLimiter;

  constructor(
    private readonly inventory: InventoryService,
    private readonly backends: BackendOpener,
    clock: Clock,
    private readonly opts: ScreenshotOptions,
  ) {
    this.limiter = new RateLimiter(opts.perServerLimit, opts.perServerWindowMs, clock);
  }

  /**
   * The current screen of `serverId` in `projectId`. ServerNotFoundError / ServerNotActiveError
   * for the server, RateLimitedError past the per-server limit, BackendError when its console
   * cannot be reached or read.
   */
  async take(projectId: string, serverId: string, format: ScreenshotFormat): Promise<Screenshot> {
    const server = await this.inventory.findServer(serverId);
    if (!server || server.projectId !== projectId) throw new ServerNotFoundError(serverId);
    if (server.status !== 'ACTIVE') throw new ServerNotActiveError(serverId, server.status);
    const d = this.limiter.hit(serverId);
    if (!d.allowed) {
      throw new RateLimitedError(`The throttling threshold has been reached: screenshots of one server ${this.opts.perServerLimit} per ${Math.round(this.opts.perServerWindowMs / 1000)} s`, d.retryAfterSeconds);
    }
    const frame = await this.capture(server, AbortSignal.timeout(this.opts.timeoutMs));
    return { format, width: frame.width, height: frame.height, data: encodeFrame(frame, format, this.opts.jpegQuality) };
  }

  /** One full screen of the server's console (no checks: callers have made them). */
  async capture(server: Parameters<InventoryService['resolveTarget']>[0], signal: AbortSignal): Promise<Frame> {
    const conn = await this.backends.open(this.inventory.resolveTarget(server), { kind: 'vnc', signal });
    const stream = conn.stream;
    const reader = new ByteReader({ maxReadLength: 1024 * 1024 });
    reader.push(conn.leftover);
    stream.on('data', (b: Buffer) => reader.push(b));
    stream.on('close', () => reader.end());
    const onAbort = (): void => {
      stream.destroy();
      reader.end(new BackendError('BACKEND_UNREACHABLE', 'the console did not send its screen in time', { failure: 'timeout' }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const init = conn.serverInit;
    const decoder = new FramebufferDecoder(reader, init.width, init.height, signal);
    try {
      stream.write(Buffer.concat([
        encodeSetPixelFormat(SCREENSHOT_PIXEL_FORMAT),
        encodeSetEncodings(SCREENSHOT_ENCODINGS),
        encodeFramebufferUpdateRequest(false, 0, 0, init.width, init.height),
      ]));
      stream.resume();
      for (let i = 0; i < MAX_UPDATES; i++) {
        const { complete } = await decoder.nextUpdate();
        if (complete) return { width: decoder.width, height: decoder.height, pixels: decoder.pixels };
        // A resize, or a server that sends the screen in parts: ask for all of it again.
        stream.write(encodeFramebufferUpdateRequest(false, 0, 0, decoder.width, decoder.height));
      }
      throw new BackendError('BACKEND_PROTOCOL', `the console did not send a full screen in ${MAX_UPDATES} updates`);
    } catch (e) {
      if (signal.aborted) throw new BackendError('BACKEND_UNREACHABLE', 'the console did not send its screen in time', { failure: 'timeout', cause: e });
      if (e instanceof ConsoleError && !(e instanceof BackendError)) {
        // The codec's errors: the backend broke the protocol (its words stay in the message, for the log).
        throw new BackendError('BACKEND_PROTOCOL', e.message, { cause: e });
      }
      throw e;
    } finally {
      signal.removeEventListener('abort', onAbort);
      decoder.close();
      stream.destroy();
    }
  }
}

/** PNG (lossless, RGB) or JPEG of a frame. */
export function encodeFrame(frame: Frame, format: ScreenshotFormat, jpegQuality = 85): Buffer {
  const { width, height, pixels } = frame;
  const rgba = Buffer.allocUnsafe(width * height * 4);
  for (let i = 0, o = 0; i < pixels.length; i++, o += 4) {
    const p = pixels[i]!;
    rgba[o] = (p >>> 16) & 0xff;
    rgba[o + 1] = (p >>> 8) & 0xff;
    rgba[o + 2] = p & 0xff;
    rgba[o + 3] = 0xff;
  }
  if (format === 'jpeg') return jpeg.encode({ data: rgba, width, height }, jpegQuality).data;
  const png = new PNG({ width, height, colorType: 2, inputColorType: 6, inputHasAlpha: true });
  rgba.copy(png.data);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 6, inputHasAlpha: true });
}
