/** Console tokens: one-time, expiring, stored only as sha256; the ConsoleTokenStore port. */

export interface ConsoleTokenRecord {
  /** sha256 hex of the token (the token itself is never stored). */
  readonly hash: string;
  readonly serverId: string;
  readonly projectId: string;
  /** Server's consoleRevision at issue: a changed target invalidates the token. */
  readonly consoleRevision: number;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly consumedAt: number | null;
  /** Node that consumed it. */
  readonly consumedBy: string | null;
}

export type ConsumeResult =
  | { readonly ok: true; readonly token: ConsoleTokenRecord }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' | 'used' };

export interface ConsoleTokenStore {
  insertConsoleToken(t: ConsoleTokenRecord): Promise<void>;
  /**
   * Marks the token consumed if it exists, is unused and unexpired at `now`: exactly one caller
   * wins, also across processes sharing the store.
   */
  consumeConsoleToken(hash: string, now: number, nodeId: string): Promise<ConsumeResult>;
  getConsoleToken(hash: string): Promise<ConsoleTokenRecord | null>;
  /** Deletes every token of a server (status change, deletion, new console target). */
  revokeServerConsoleTokens(serverId: string): Promise<number>;
  /** Deletes tokens that expired before `before`; returns how many. */
  purgeConsoleTokens(before: number): Promise<number>;
}
