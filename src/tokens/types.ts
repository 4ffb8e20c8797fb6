/** Console tokens: one-time, expiring, stored only as sha256; the ConsoleTokenStore port. */

/**
 * Why a token was revoked before its time. Stored as text: a later version may add reasons (a
 * credential revoked, a user disabled); readers show a reason they do not know generically.
 */
/** The console a token opens. */
export type ConsoleTokenKind = 'vnc' | 'serial';

export type RevocationReason = 'server-stopped' | 'server-deleted' | 'console-changed' | 'credential-revoked';

export interface ConsoleTokenRecord {
  /** sha256 hex of the token (the token itself is never stored). */
  readonly hash: string;
  readonly serverId: string;
  readonly projectId: string;
  /** What the token opens: the VNC console (`vnc_auto.html`, also when absent) or the serial console (`serial.html`). */
  readonly kind?: ConsoleTokenKind;
  /** Server's consoleRevision at issue: a changed target invalidates the token. */
  readonly consoleRevision: number;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly consumedAt: number | null;
  /** Node that consumed it. */
  readonly consumedBy: string | null;
  /** When it was revoked (kept until it expires, so that its holder hears why), or null. */
  readonly revokedAt: number | null;
  /** A RevocationReason, or one of a later version. */
  readonly revokedReason: string | null;
  /** The credential the token was issued through (Principal.issuer: `ak:<AK>` or `token:<hash>`), when known. */
  readonly issuedBy?: string | null;
  /** The user whose credential it was, when known. */
  readonly issuedByUser?: string | null;
}

/**
 * The token's server as the store read it in the consumption's own transaction or statement, after
 * the token was won: what the proxy's re-check at connect time needs (CVE-2013-0335), without a
 * round trip of its own. Null: the server does not exist.
 */
export interface ServerAtConsume {
  readonly projectId: string;
  readonly status: string;
  readonly consoleRevision: number;
}

export type ConsumeResult =
  /** `server` absent: the store did not read it (the caller reads it itself). */
  | { readonly ok: true; readonly token: ConsoleTokenRecord; readonly server?: ServerAtConsume | null }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' | 'used' }
  | { readonly ok: false; readonly reason: 'revoked'; readonly revokedReason: string };

/** Whose console tokens to revoke: one credential of a user (`ak:<AK>`, as `issuedBy` records it), or all of a user's. */
export type IssuedBy = { readonly issuedBy: string; readonly userId: string } | { readonly userId: string };

export interface ConsoleTokenStore {
  insertConsoleToken(t: ConsoleTokenRecord): Promise<void>;
  /**
   * Marks the token consumed if it exists, is unused, unrevoked and unexpired at `now`: exactly
   * one caller wins, also across processes sharing the store. The winner also gets the token's
   * server as read after the consumption, in the same transaction or statement (`server`).
   */
  consumeConsoleToken(hash: string, now: number, nodeId: string): Promise<ConsumeResult>;
  /**
   * Gives back a token this node consumed at `consumedAt` (the attempt failed for a reason of
   * ours, not the user's): unused again (a revocation made meanwhile still holds). Returns
   * whether it was given back.
   */
  releaseConsoleToken(hash: string, consumedAt: number, nodeId: string): Promise<boolean>;
  getConsoleToken(hash: string): Promise<ConsoleTokenRecord | null>;
  /** Revokes every unrevoked token of a server (status change, deletion, new console target). */
  revokeServerConsoleTokens(serverId: string, reason: RevocationReason, now: number): Promise<number>;
  /**
   * Revokes every unrevoked, unconsumed token issued through a credential (`issuedBy`, with the
   * user it belongs to: one index serves both) or by a user (`userId` alone): the credential was
   * deactivated or deleted, the user disabled or deleted.
   */
  revokeIssuedConsoleTokens(by: IssuedBy, reason: RevocationReason, now: number): Promise<number>;
  /** Deletes tokens that expired before `before`; returns how many. */
  purgeConsoleTokens(before: number): Promise<number>;
}
