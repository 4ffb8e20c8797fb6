/**
 * A QEMU VM with a serial port, for serial console tests: it boots a boot sector assembled here
 * (no download) that prints `ECS SERIAL READY` to COM1 and to the screen, then echoes each byte it
 * receives on COM1 as `[x]` (to both). QEMU starts paused (`-S`) so the service can hold the
 * serial port before the first byte; `start()` lets it run. VNC without a password (a `static`
 * target), the serial port on a unix socket (QEMU `-chardev socket,server=on,wait=off`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { QmpClient } from '../../src/backends/qmp-client.js';
import { requireBinary, waitForPort } from './real-vnc.js';

export const BANNER = 'ECS SERIAL READY';

/**
 * The boot sector (x86 real mode, loaded at 0x7C00), hand-assembled; offsets in the comments.
 * The banner goes through `putc` (COM1 data port 0x3F8, then BIOS int 10h teletype).
 */
export function bootSector(): Buffer {
  const code = [
    0xfa, // 00 cli
    0x31, 0xc0, // 01 xor ax,ax
    0x8e, 0xd8, // 03 mov ds,ax
    0x8e, 0xd0, // 05 mov ss,ax
    0xbc, 0x00, 0x7c, // 07 mov sp,0x7c00
    0xfb, // 0a sti
    0xbe, 0x44, 0x7c, // 0b mov si,msg (0x7c44)
    0xac, // 0e print: lodsb
    0x08, 0xc0, // 0f or al,al
    0x74, 0x05, // 11 jz rx (0x18)
    0xe8, 0x21, 0x00, // 13 call putc (0x37)
    0xeb, 0xf6, // 16 jmp print (0x0e)
    0xba, 0xfd, 0x03, // 18 rx: mov dx,0x3fd (line status)
    0xec, // 1b wait: in al,dx
    0xa8, 0x01, // 1c test al,1 (data ready)
    0x74, 0xfb, // 1e jz wait (0x1b)
    0xba, 0xf8, 0x03, // 20 mov dx,0x3f8
    0xec, // 23 in al,dx
    0x88, 0xc3, // 24 mov bl,al
    0xb0, 0x5b, // 26 mov al,'['
    0xe8, 0x0c, 0x00, // 28 call putc
    0x88, 0xd8, // 2b mov al,bl
    0xe8, 0x07, 0x00, // 2d call putc
    0xb0, 0x5d, // 30 mov al,']'
    0xe8, 0x02, 0x00, // 32 call putc
    0xeb, 0xe1, // 35 jmp rx (0x18)
    0x50, // 37 putc: push ax
    0xba, 0xf8, 0x03, // 38 mov dx,0x3f8
    0xee, // 3b out dx,al
    0xb4, 0x0e, // 3c mov ah,0x0e
    0xb7, 0x00, // 3e mov bh,0
    0xcd, 0x10, // 40 int 0x10
    0x58, // 42 pop ax
    0xc3, // 43 ret
  ];
  assert.equal(code.length, 0x44, 'the message starts at offset 0x44');
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector, 0);
  Buffer.from(`${BANNER}\r\n\0`, 'latin1').copy(sector, 0x44);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

export interface SerialVm {
  /** VNC port (no password). */
  vncPort: number;
  /** The serial port as the inventory takes it: `unix:/path`. */
  serial: string;
  /** Lets the paused VM run (it prints the banner at once). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

export async function startSerialVm(): Promise<SerialVm> {
  const qemu = requireBinary('/usr/bin/qemu-system-x86_64', 'qemu-system-x86');
  const dir = mkdtempSync(join(tmpdir(), 'ecs-serial-vm-'));
  const image = join(dir, 'boot.img');
  // A 1.44 MB floppy whose first sector is ours.
  const floppy = Buffer.alloc(1474560);
  bootSector().copy(floppy, 0);
  writeFileSync(image, floppy);
  const serialPath = join(dir, 'serial.sock');
  const qmpPath = join(dir, 'qmp.sock');
  let display = 0;
  for (let d = 10 + (process.pid % 80); d < 99; d++) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(5900 + d, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      display = d;
      break;
    }
  }
  assert.ok(display > 0, 'no free VNC display for QEMU');
  const child = spawn(qemu, [
    '-S', '-display', 'none', '-nodefaults', '-vga', 'std', '-m', '32', '-machine', 'accel=tcg',
    '-drive', `file=${image},format=raw,if=floppy`, '-boot', 'a',
    '-vnc', `127.0.0.1:${display}`,
    '-chardev', `socket,id=ser0,path=${serialPath},server=on,wait=off`, '-serial', 'chardev:ser0',
    '-qmp', `unix:${qmpPath},server=on,wait=off`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const vncPort = 5900 + display;
  try {
    await waitForPort(vncPort);
    const deadline = Date.now() + 10_000;
    while (!existsSync(serialPath) || !existsSync(qmpPath)) {
      if (Date.now() > deadline) throw new Error('the serial and QMP sockets did not appear');
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stopChild(child);
    throw new Error(`QEMU did not start: ${(e as Error).message}\n${stderr}`);
  }
  return {
    vncPort,
    serial: `unix:${serialPath}`,
    async start() {
      const c = await QmpClient.connect(`unix:${qmpPath}`, { timeoutMs: 5000, signal: AbortSignal.timeout(10_000) });
      try {
        await c.execute('cont', {});
      } finally {
        c.close();
      }
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
