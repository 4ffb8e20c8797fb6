/** The remote_console call's domain logic: authorize, check the server, issue a token, build the URL. */
import type { Auditor } from '../audit/auditor.js';
import { ServerNotActiveError, ServerNotFoundError } from '../errors.js';
import type { IdentityService } from '../identity/identity-service.js';
import { ACTION_VNC, type Principal } from '../identity/types.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import { tokenRef } from '../log.js';
import type { ConsoleTokenService } from './console-token-service.js';

export type ConsoleLang = 'EN' | 'ZH';

export interface RemoteConsoleResult {
  readonly url: string;
  readonly serverId: string;
  readonly tokenRef: string;
  readonly expiresAt: number;
}

export class RemoteConsoleService {
  constructor(
    private readonly identity: IdentityService,
    private readonly inventory: InventoryService,
    private readonly tokens: ConsoleTokenService,
    private readonly auditor: Auditor,
    /** Console base URL (no trailing slash) for an availability zone. */
    private readonly baseUrlFor: (az: string) => string,
    private readonly tLength: string,
  ) {}

  async getRemoteConsole(p: Principal, projectId: string, serverId: string, lang: ConsoleLang): Promise<RemoteConsoleResult> {
    this.identity.authorize(p, projectId, ACTION_VNC);
    const server = await this.inventory.findServer(serverId);
    // NOTE: another project's server is "not found", never "forbidden": no existence leak.
    if (!server || server.projectId !== projectId) throw new ServerNotFoundError(serverId);
    if (server.status !== 'ACTIVE') throw new ServerNotActiveError(server.id, server.status);
    const { token, record } = await this.tokens.issue(server, { issuedBy: p.issuer, userId: p.userId });
    const ref = tokenRef(token);
    await this.auditor.record('issued', {
      projectId, serverId: server.id, tokenRef: ref,
      detail: { credential: p.kind, userId: p.userId, expiresAt: new Date(record.expiresAt).toISOString() },
    });
    const q = new URLSearchParams({ token, lang, tLength: this.tLength });
    return { url: `${this.baseUrlFor(server.availabilityZone)}/vnc_auto.html?${q.toString()}`, serverId: server.id, tokenRef: ref, expiresAt: record.expiresAt };
  }
}
