/**
 * The serial hub on its own (a socket pair as the serial port, SQLite in memory): a viewer that
 * falls behind pauses the port for everyone until it catches up; one that stays behind is ended
 * and the others read on; one connection per port however many viewers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import { SerialHub, SERIAL_HIGH_WATER, type SerialViewer } from '../../../src/serial/serial-hub.js';
import { openSqliteStores } from '../../../src/store/sqlite/sqlite-stores.js';
import type { BackendOpener, SerialConnection } from '../../../src/backends/types.js';
import type { InventoryService } from '../../../src/inventory/inventory-service.js';
import type { Server } from '../../../src/inventory/types.js';

const server: Server = {
  id: '6f1c2b9e-1d2a-4c3b-8e4f-5a6b7c8d9e0f', projectId: 'p', name: 'tty', status: 'ACTIVE', availabilityZone: 'az1', createdAt: 0, updatedAt: 0,
  console: { kind: 'static', host: '127.0.0.1', port: 1, auth: 'none', passwordSealed: null, tls: null, serial: 'tcp:127.0.0.1:1' }, consoleRevision: 1,
};

/**
 * A hub on SQLite in memory whose serial port is a local TCP server (the "VM" side: each
 * connection is given to `onVm`); `opened` counts the hub's connections to it.
 */
async function hubOnPort(onVm: (s: Socket) => void, opts: { slowViewerMs?: number } = {}) {
  const listener = createServer(onVm);
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
  const port = (listener.address() as { port: number }).port;
  const counts = { opened: 0 };
  const backends: BackendOpener = {
    open: async () => {
      counts.opened++;
      const sock = connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.pause();
      return { kind: 'serial', stream: sock, leftover: Buffer.alloc(0), info: { address: 'x', tls: null, auth: 'none' } } satisfies SerialConnection as never;
    },
  };
  const stores = openSqliteStores(':memory:');
  const hub = new SerialHub({
    backends, inventory: { resolveTarget: (s: Server) => ({ serverId: s.id, console: s.console, password: null }) } as unknown as InventoryService,
    store: stores.serialOutput, clock: systemClock, log: createLogger({ level: 'silent' }),
  }, { nodeId: 'n1', ...opts });
  return {
    hub, counts,
    close: async () => {
      await hub.stop();
      await stores.close();
      await new Promise<void>((r) => listener.close(() => r()));
    },
  };
}

test('a viewer that falls behind pauses the port until it catches up; one that stays behind is ended, the others go on', async () => {
  // The "VM" side of the serial port.
  let vm: Socket | null = null;
  const { hub, counts, close } = await hubOnPort((s) => (vm = s), { slowViewerMs: 300 });
  try {
    const viewer = (label: string) => {
      const v = { got: 0, backlog: 0, ended: false };
      const sv: SerialViewer = {
        label, onOutput: (b) => (v.got += b.length), onRole: () => undefined, onPortClosed: () => undefined,
        backlog: () => v.backlog, tooSlow: () => (v.ended = true),
      };
      return { v, sv };
    };
    const fast = viewer('fast');
    const slow = viewer('slow');
    const a = await hub.attach(server, fast.sv, AbortSignal.timeout(5000));
    const b = await hub.attach(server, slow.sv, AbortSignal.timeout(5000));
    assert.equal(counts.opened, 1, 'one connection for both viewers');
    while (!vm) await new Promise((r) => setTimeout(r, 10));
    const write = (n: number) => (vm as Socket).write(Buffer.alloc(n, 0x41));
    const until = async (ok: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    write(1000);
    await until(() => fast.v.got === 1000 && slow.v.got === 1000, 'both viewers get the output');
    // The slow viewer is behind: the port is paused after the next read.
    slow.v.backlog = SERIAL_HIGH_WATER + 1;
    write(10);
    await until(() => fast.v.got === 1010, 'the read that finds it behind');
    write(10);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fast.v.got, 1010, 'paused: nothing more is read');
    // It catches up: reading goes on.
    slow.v.backlog = 0;
    await until(() => fast.v.got === 1020, 'resumed');
    assert.equal(slow.v.ended, false);
    // Behind again and it stays behind: ended after slowViewerMs, the fast one reads on.
    slow.v.backlog = SERIAL_HIGH_WATER + 1;
    write(10);
    await until(() => fast.v.got === 1030, 'the read that finds it behind again');
    write(10);
    await until(() => slow.v.ended, 'the slow viewer is ended');
    b.detach();
    await until(() => fast.v.got === 1040, 'the fast viewer reads on');
    a.detach();
  } finally {
    (vm as Socket | null)?.destroy();
    await close();
  }
});

test('a change read late from the change feed (made before the port was taken) leaves the port alone; one made after it, or applied at once, lets it go', async () => {
  const vms: Socket[] = [];
  const { hub, counts, close } = await hubOnPort((s) => {
    vms.push(s);
    s.on('error', () => undefined);
    s.write('banner\r\n');
  });
  try {
    const closed: string[] = [];
    const sv: SerialViewer = {
      label: 'v', onOutput: () => undefined, onRole: () => undefined, onPortClosed: (why) => closed.push(why),
      backlog: () => 0, tooSlow: () => undefined,
    };
    const stoppedBefore = Date.now() - 1000;
    const a = await hub.attach(server, sv, AbortSignal.timeout(5000));
    hub.release(server.id, 'The server was stopped.', stoppedBefore);
    assert.deepEqual(closed, [], 'a stop made before the port was taken does not close it');
    const live = await hub.output(server, undefined, AbortSignal.timeout(5000), false);
    assert.equal(live.live, true, 'still held');
    assert.equal(counts.opened, 1);
    hub.release(server.id, 'The server was stopped.', Date.now());
    assert.deepEqual(closed, ['The server was stopped.'], 'a stop made after it was taken closes it');
    a.detach();
    // Taken again, then a change applied at once (no time given): let go.
    const b = await hub.attach(server, sv, AbortSignal.timeout(5000));
    assert.equal(counts.opened, 2);
    hub.release(server.id, 'The server\'s console was moved.');
    assert.deepEqual(closed, ['The server was stopped.', 'The server\'s console was moved.']);
    b.detach();
  } finally {
    for (const s of vms) s.destroy();
    await close();
  }
});
