/**
 * Console output: the text a server's serial console printed, as Huawei's and Nova's
 * `os-getConsoleOutput` answer it (`length`: the last N lines), and beyond both a byte cursor: the
 * answer carries the offset it ends at, and a call with that cursor gets only what is new.
 */
import type { Auditor } from '../audit/auditor.js';
import { ConsoleError, ServerNotFoundError } from '../errors.js';
import type { IdentityService } from '../identity/identity-service.js';
import { ACTION_VNC, type Principal } from '../identity/types.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import type { Server } from '../inventory/types.js';
import { lastLines } from './output-ring.js';
import type { SerialHub } from './serial-hub.js';

/** The server has no serial port, so no console output (Nova: 409 ConsoleNotAvailable). */
export class NoSerialConsoleError extends ConsoleError {
  constructor(readonly serverId: string) {
    super('VALIDATION', `Server ${serverId} has no serial console.`);
  }
}

export interface ConsoleOutput {
  /** The output as text (UTF-8; bytes that are not become U+FFFD). */
  readonly output: string;
  /** Byte offset just past what was returned: give it as `cursor` next time to read only what is new. */
  readonly cursor: number;
  /** Byte offset of the first byte returned. */
  readonly start: number;
  /** Bytes between the cursor asked for and `start` that are no longer kept (beyond the last 1 MiB). */
  readonly missed: number;
  /** Whether a node holds the port now (false: the output saved when it was last held). */
  readonly live: boolean;
}

export class ConsoleOutputService {
  constructor(
    private readonly identity: IdentityService,
    private readonly inventory: InventoryService,
    private readonly hub: SerialHub,
    private readonly auditor: Auditor,
  ) {}

  /** The project's server, or ServerNotFoundError (another project's server is not found either). */
  async server(p: Principal, projectId: string, serverId: string): Promise<Server> {
    // NOTE: console output is what the console shows: the same permission as a console URL.
    this.identity.authorize(p, projectId, ACTION_VNC);
    const server = await this.inventory.findServer(serverId);
    if (!server || server.projectId !== projectId) throw new ServerNotFoundError(serverId);
    return server;
  }

  async output(p: Principal, projectId: string, serverId: string, opts: { length?: number; cursor?: number }): Promise<ConsoleOutput> {
    const server = await this.server(p, projectId, serverId);
    if (!server.console.serial) throw new NoSerialConsoleError(server.id);
    const slice = await this.hub.output(server, opts.cursor, AbortSignal.timeout(10_000), server.status === 'ACTIVE');
    let data = slice.data;
    let start = slice.start;
    if (opts.length !== undefined) {
      const tail = lastLines(data, opts.length);
      start += data.length - tail.length;
      data = tail;
    }
    await this.auditor.record('console-output', {
      projectId, serverId: server.id, tokenRef: null,
      detail: { credential: p.kind, userId: p.userId, bytes: data.length, ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}), ...(opts.length !== undefined ? { length: opts.length } : {}) },
    }).catch(() => undefined);
    return { output: data.toString('utf8'), cursor: slice.end, start, missed: slice.missed, live: slice.live };
  }
}
