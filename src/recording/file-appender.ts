/**
 * Appends to recording files from the recording worker (recording-worker.ts), around the page
 * cache where the filesystem allows it.
 *
 * A recording is written once and read rarely: copying it into the page cache costs the writer a
 * copy per byte (on a VM, into memory the guest may never have touched: 1.4-3.2 ms of system time
 * per MB measured here, against 0.1-0.2 with direct I/O), and fills the cache with pages the
 * machine's other work needed. So each append writes its whole 4 KiB blocks with O_DIRECT (from
 * memory aligned for it) and only the last partial block through the page cache:
 *
 * - the file's length is always exactly what was appended (no padding), and a process killed
 *   between appends leaves every byte of the appends that returned, as with plain writes;
 * - the partial block left by one append is read back (from the page cache) and rewritten, whole,
 *   by the next one's direct write (the kernel writes back and drops a cached page that a direct
 *   write covers, so readers always see the file's bytes);
 * - small appends (under a block with the tail) go through the page cache only.
 *
 * A filesystem that refuses O_DIRECT (at open), or memory it will not take (EINVAL at write), turns
 * direct I/O off for this appender: the append is written through the page cache, nothing is lost.
 */
import { closeSync, constants, openSync, readSync, write, writevSync } from 'node:fs';

/** Direct writes are whole blocks of this size, at offsets and from addresses aligned to it (4 KiB fits 512-byte and 4Kn devices). */
export const DIRECT_BLOCK = 4096;
/** WebAssembly's page: the unit the aligned memory grows by. */
const WASM_PAGE = 64 * 1024;

export interface FileAppenderOptions {
  /** Opens `path` for direct writes (a test injects a filesystem that refuses). */
  openDirect?: (path: string) => number;
  /** Offsets the aligned memory (a test misaligns it to see the write-time fallback). */
  misalign?: number;
}

/** What this module uses of WebAssembly.Memory (the project's type libraries do not declare WebAssembly). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => WasmMemory } }).WebAssembly;

function isEinval(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'EINVAL';
}

/** Writes `len` bytes of `buf` from `off` at `position`, through short writes, on the thread pool (the caller's thread goes on while the device takes them). */
async function writeAll(fd: number, buf: Buffer, off: number, len: number, position: number): Promise<void> {
  let done = 0;
  while (done < len) {
    done += await new Promise<number>((resolve, reject) =>
      write(fd, buf, off + done, len - done, position + done, (e, n) => (e ? reject(e) : resolve(n))),
    );
  }
}

export class FileAppender {
  private direct = true;
  /**
   * Memory aligned for direct I/O: a WebAssembly memory's buffer starts on a page boundary (the
   * engine maps it whole), which an ordinary Buffer does not promise. Held while recordings are
   * open ({@link release}).
   */
  private mem: WasmMemory | null = null;
  private view: Buffer | null = null;
  private readonly openDirect: (path: string) => number;
  /** Bytes written with O_DIRECT (the tests read it). */
  directBytes = 0;

  constructor(private readonly options: FileAppenderOptions = {}) {
    this.openDirect = options.openDirect ?? ((path) => openSync(path, constants.O_WRONLY | constants.O_DIRECT));
  }

  /** False once the filesystem or the memory refused a direct write: page cache only from then on. */
  get usesDirectIo(): boolean {
    return this.direct;
  }

  /**
   * Writes `pieces` (`total` bytes) at `at`, the file's length so far. At 0 the file is created and
   * must not exist yet (mode 0600; never another file, nor a symlink, opened). The direct write runs on the
   * thread pool (the caller may seal the next chunk meanwhile); one append at a time per appender
   * (its aligned memory is reused).
   */
  async append(path: string, at: number, pieces: readonly Buffer[], total: number): Promise<void> {
    const fd = openSync(path, at === 0 ? 'wx+' : 'r+', 0o600);
    try {
      const tail = at % DIRECT_BLOCK;
      const whole = tail + total - ((tail + total) % DIRECT_BLOCK);
      if (this.direct && whole > 0 && (await this.appendDirect(path, fd, at, tail, pieces, total, whole))) return;
      const done = writevSync(fd, pieces as Buffer[], at);
      // A short write (a full disk returns an error instead, but a signal may cut one short).
      if (done < total) await writeAll(fd, Buffer.concat(pieces as Buffer[], total), done, total - done, at + done);
    } finally {
      closeSync(fd);
    }
  }

  /** Drops the aligned memory (no recording open: an idle process holds none). */
  release(): void {
    this.mem = null;
    this.view = null;
  }

  /** False: nothing was written, the caller writes through the page cache. */
  private async appendDirect(path: string, fd: number, at: number, tail: number, pieces: readonly Buffer[], total: number, whole: number): Promise<boolean> {
    const end = tail + total;
    const buf = this.aligned(end);
    if (!buf) return false;
    const start = at - tail;
    // The partial block the last append left, from the page cache, to be rewritten whole.
    if (tail > 0) {
      let got = 0;
      while (got < tail) {
        const n = readSync(fd, buf, got, tail - got, start + got);
        if (n === 0) return false; // shorter than we wrote: write at `at` as asked, through the cache
        got += n;
      }
    }
    let o = tail;
    for (const p of pieces) o += p.copy(buf, o);
    let dfd: number;
    try {
      dfd = this.openDirect(path);
    } catch (e) {
      if (!isEinval(e)) throw e;
      this.direct = false;
      return false;
    }
    try {
      await writeAll(dfd, buf, 0, whole, start);
      this.directBytes += whole;
    } catch (e) {
      if (!isEinval(e)) throw e;
      // The memory or the offset was refused (nothing written): the same bytes through the cache.
      this.direct = false;
      await writeAll(fd, buf, 0, end, start);
      return true;
    } finally {
      closeSync(dfd);
    }
    if (end > whole) await writeAll(fd, buf, whole, end - whole, start + whole);
    return true;
  }

  /** `need` bytes of aligned memory, grown as needed; null when the engine will not give them. */
  private aligned(need: number): Buffer | null {
    const skew = this.options.misalign ?? 0;
    const bytes = need + skew;
    if (this.view && this.view.length >= need) return this.view;
    try {
      const pages = Math.ceil(bytes / WASM_PAGE);
      if (!this.mem) this.mem = new Memory({ initial: pages });
      else if (this.mem.buffer.byteLength < bytes) this.mem.grow(pages - this.mem.buffer.byteLength / WASM_PAGE);
      this.view = Buffer.from(this.mem.buffer, skew);
      return this.view;
    } catch {
      // No address space for it (a limit on virtual memory): the page cache it is.
      this.direct = false;
      this.release();
      return null;
    }
  }
}
