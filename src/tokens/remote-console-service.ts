/** The remote_console call's domain logic: authorize, check the server, issue a token, build the URL. */
import type { AuditLogSink, Auditor } from '../audit/auditor.js';
import { ConsoleError, ServerNotActiveError, ServerNotFoundError } from '../errors.js';
import type { IdentityService } from '../identity/identity-service.js';
import { ACTION_VNC, type Principal } from '../identity/types.js';
import type { InventoryService } from '../inventory/inventory-service.js';
import { isoTime } from '../util/iso-time.js';
import type { ConsoleTokenService } from './console-token-service.js';
import type { ConsoleTokenKind } from './types.js';

export type ConsoleLang = 'EN' | 'ZH';

/** The API request behind a console URL, as its audit record keeps it (no secret: the IAM token's sha256 prefix only). */
export interface RequestAudit {
  readonly requestId?: string;
  readonly clientAddress?: string;
  readonly iamTokenRef?: string;
  /** Where the `issued` event's log fields go (the API: the request's access line); a line of their own when absent. */
  readonly logTo?: AuditLogSink;
}

export interface RemoteConsoleResult {
  readonly url: string;
  readonly serverId: string;
  readonly tokenRef: string;
  readonly expiresAt: number;
}

export class RemoteConsoleService {
  /** `tLength=...`, encoded once. */
  private readonly tLengthParam: string;

  constructor(
    private readonly identity: IdentityService,
    private readonly inventory: InventoryService,
    private readonly tokens: ConsoleTokenService,
    private readonly auditor: Auditor,
    /** Console base URL (no trailing slash) for an availability zone. */
    private readonly baseUrlFor: (az: string) => string,
    tLength: string,
  ) {
    this.tLengthParam = new URLSearchParams({ tLength }).toString();
  }

  /**
   * A one-time console URL: `vnc` opens `vnc_auto.html` (noVNC), `serial` opens `serial.html`
   * (xterm.js; ServerNoSerialPortError when the server has no serial port). `request`: the API
   * request asking (its id, the client's address, and the IAM token's reference when the caller
   * used one), for the audit record.
   */
  async getRemoteConsole(p: Principal, projectId: string, serverId: string, lang: ConsoleLang, kind: ConsoleTokenKind = 'vnc', request: RequestAudit = {}): Promise<RemoteConsoleResult> {
    this.identity.authorize(p, projectId, ACTION_VNC);
    const server = await this.inventory.findServerForConsole(serverId);
    // NOTE: another project's server is "not found", never "forbidden": no existence leak.
    if (!server || server.projectId !== projectId) throw new ServerNotFoundError(serverId);
    if (server.status !== 'ACTIVE') throw new ServerNotActiveError(server.id, server.status);
    if (kind === 'serial' && !server.console.serial) throw new ConsoleError('VALIDATION', `Server ${server.id} has no serial console.`);
    const { token, record } = this.tokens.mint(server, { issuedBy: p.issuer, userId: p.userId }, kind);
    // tokenRef(token), from the hash already drawn (the record keeps the token's sha256).
    const ref = record.hash.slice(0, 8);
    // The token's insert and its audit record are queued together: one commit on SQLite (group
    // commit), two statements in flight on PostgreSQL. Should the insert fail alone, the call fails
    // and the audit trail over-reports one issue (never under-reports one).
    await Promise.all([this.tokens.store(record), this.auditor.record('issued', {
      projectId, serverId: server.id, tokenRef: ref, actorUserId: p.userId, actorCredential: p.credentialId,
      requestId: request.requestId ?? null, clientAddress: request.clientAddress ?? null, outcome: 'ok',
      detail: {
        credential: p.kind, userId: p.userId, expiresAt: isoTime(record.expiresAt), ...(kind === 'serial' ? { console: 'serial' } : {}),
        ...(request.iamTokenRef ? { iamTokenRef: request.iamTokenRef } : {}),
      },
    }, request.logTo)]);
    // As URLSearchParams would write it: the token (a UUID) and lang need no escaping.
    const page = kind === 'serial' ? 'serial.html' : 'vnc_auto.html';
    return { url: `${this.baseUrlFor(server.availabilityZone)}/${page}?token=${token}&lang=${lang}&${this.tLengthParam}`, serverId: server.id, tokenRef: ref, expiresAt: record.expiresAt };
  }
}
