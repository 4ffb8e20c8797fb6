/**
 * Console tokens per the contract: UUID v4 from a CSPRNG (122 random bits), only the sha256 is
 * stored, TTL-limited, consumed exactly once by the first WebSocket the proxy accepts.
 */
import type { Clock } from '../clock.js';
import type { Server } from '../inventory/types.js';
import { UUID_V4_RE, sha256Hex, uuid } from '../util/ids.js';
import type { ConsoleTokenKind, ConsoleTokenRecord, ConsoleTokenStore, ConsumeResult } from './types.js';

/** sha256 hex of a console token: the only form that is stored or compared. */
export function consoleTokenHash(token: string): string {
  return sha256Hex(token);
}

/**
 * A token as presented to the proxy, hashed once: its store key and its log reference (the hash's
 * first 8 hex digits, what `tokenRef()` gives) come from one sha256, not one each.
 */
export interface PresentedToken {
  readonly token: string;
  readonly hash: string;
  /** The first 8 hex digits of the hash: the token's reference in logs and audit records. */
  readonly ref: string;
}

export function presentedToken(token: string): PresentedToken {
  const hash = consoleTokenHash(token);
  return { token, hash, ref: hash.slice(0, 8) };
}

/** What a token is good for now (`revoked`: the record says why). */
export type TokenState = 'valid' | 'unknown' | 'expired' | 'used' | 'revoked';

export class ConsoleTokenService {
  constructor(
    private readonly store_: ConsoleTokenStore,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  /**
   * Issues a token of `kind` for `server`; `issuer` records the credential and user it was issued
   * through (their revocation revokes it).
   */
  async issue(server: Server, issuer: { issuedBy: string; userId: string } | null = null, kind: ConsoleTokenKind = 'vnc'): Promise<{ token: string; record: ConsoleTokenRecord }> {
    const issued = this.mint(server, issuer, kind);
    await this.store_.insertConsoleToken(issued.record);
    return issued;
  }

  /**
   * A token and its record, not stored yet: `store(record)` stores it (issue() does both). Lets a
   * caller queue the insert with another write (remote_console: its audit record, one commit).
   */
  mint(server: Server, issuer: { issuedBy: string; userId: string } | null = null, kind: ConsoleTokenKind = 'vnc'): { token: string; record: ConsoleTokenRecord } {
    const token = uuid();
    const now = this.clock.now();
    const record: ConsoleTokenRecord = {
      hash: consoleTokenHash(token), serverId: server.id, projectId: server.projectId, kind, consoleRevision: server.consoleRevision,
      issuedAt: now, expiresAt: now + this.ttlMs, consumedAt: null, consumedBy: null, revokedAt: null, revokedReason: null,
      issuedBy: issuer?.issuedBy ?? null, issuedByUser: issuer?.userId ?? null,
    };
    return { token, record };
  }

  /** Stores a minted token's record. */
  store(record: ConsoleTokenRecord): Promise<void> {
    return this.store_.insertConsoleToken(record);
  }

  /** Consumes a token once. Malformed tokens are `unknown` without a store round trip. */
  consume(t: string | PresentedToken, nodeId: string): Promise<ConsumeResult> {
    const token = typeof t === 'string' ? t : t.token;
    if (!UUID_V4_RE.test(token)) return Promise.resolve({ ok: false, reason: 'unknown' });
    return this.store_.consumeConsoleToken(typeof t === 'string' ? consoleTokenHash(t) : t.hash, this.clock.now(), nodeId);
  }

  /**
   * Gives back a token this node consumed (`t` as consume returned it): the attempt failed for a
   * reason of ours. Resolves whether it was given back.
   */
  release(t: ConsoleTokenRecord, nodeId: string): Promise<boolean> {
    return t.consumedAt === null ? Promise.resolve(false) : this.store_.releaseConsoleToken(t.hash, t.consumedAt, nodeId);
  }

  /** Looks a token up without consuming it (the console page's pre-check). */
  async peek(t: string | PresentedToken): Promise<{ state: TokenState; record: ConsoleTokenRecord | null }> {
    const token = typeof t === 'string' ? t : t.token;
    if (!UUID_V4_RE.test(token)) return { state: 'unknown', record: null };
    const r = await this.store_.getConsoleToken(typeof t === 'string' ? consoleTokenHash(t) : t.hash);
    if (!r) return { state: 'unknown', record: null };
    if (r.consumedAt !== null) return { state: 'used', record: r };
    if (r.revokedReason !== null) return { state: 'revoked', record: r };
    if (r.expiresAt <= this.clock.now()) return { state: 'expired', record: r };
    return { state: 'valid', record: r };
  }

  /** Deletes tokens expired for more than `graceMs` (kept a while so late users hear "expired"). */
  purge(graceMs = 3600_000): Promise<number> {
    return this.store_.purgeConsoleTokens(this.clock.now() - graceMs);
  }
}
