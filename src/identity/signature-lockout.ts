/**
 * Locking out repeated signature failures per (AK, source address).
 *
 * NOTE: an AK is not a secret (it travels in every Authorization header and in access logs), so a
 * lock anyone who saw it can set must not shut its owner out: failures are counted per (AK, source
 * address) and only that pair is locked; a correct signature from another address keeps working.
 * Unknown AKs are counted and locked exactly like known ones, so that no answer tells them apart.
 * Every lock is logged at warn and audited; an operator can lift it (`ecs-console key unlock`).
 */
import type { Auditor } from '../audit/auditor.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Actor, SignatureFailureOutcome, SignatureFailureRecord, SignatureFailureState, SignatureFailureStore } from './types.js';

export interface LockoutOptions {
  /** Consecutive failures of one (AK, address) pair that lock it. */
  readonly threshold: number;
  /** How long a lock lasts; a pair's failures are also forgotten this long after its last one. */
  readonly lockMs: number;
  /** Most failure records kept; beyond, those expiring first go (a flood of random AKs stays bounded). */
  readonly maxRows: number;
}

/** What the request that failed was, for the log and the audit record. */
export interface FailureContext {
  readonly requestId: string | null;
  /** The key's project when the AK is known. */
  readonly projectId: string | null;
  readonly knownKey: boolean;
}

export class SignatureLockout {
  private failuresSinceTrim = 0;
  private readonly trimEvery: number;

  constructor(
    private readonly store: SignatureFailureStore,
    private readonly clock: Clock,
    private readonly opts: LockoutOptions,
    private readonly auditor: Auditor,
    private readonly log: Logger,
  ) {
    // Between two trims one node adds at most maxRows / 10 records.
    this.trimEvery = Math.max(1, Math.floor(opts.maxRows / 10));
  }

  /** The pair's failures and lock, or null when none is remembered. */
  state(ak: string, address: string): Promise<SignatureFailureState | null> {
    return this.store.getSignatureFailures(ak, address, this.clock.now());
  }

  /** Seconds the pair stays locked (0 when it is not). */
  lockedForSeconds(state: SignatureFailureState | null): number {
    const now = this.clock.now();
    return state?.lockedUntil != null && state.lockedUntil > now ? Math.ceil((state.lockedUntil - now) / 1000) : 0;
  }

  /** Counts one failure of the pair; a lock it sets is logged at warn and audited. */
  async failure(ak: string, address: string, ctx: FailureContext): Promise<SignatureFailureOutcome> {
    const outcome = await this.store.recordSignatureFailure(ak, address, this.clock.now(), this.opts.threshold, this.opts.lockMs);
    if (outcome.lockedNow && outcome.lockedUntil !== null) await this.reportLock(ak, address, outcome.lockedUntil, ctx);
    if (++this.failuresSinceTrim >= this.trimEvery) {
      this.failuresSinceTrim = 0;
      const trimmed = await this.store.trimSignatureFailures(this.opts.maxRows);
      if (trimmed > 0) this.log.warn({ trimmed, maxRows: this.opts.maxRows }, 'signature-failure records over the limit: the oldest were dropped');
    }
    return outcome;
  }

  /** A good signature: the pair's count of consecutive failures starts over. */
  async success(ak: string, address: string, state: SignatureFailureState | null): Promise<void> {
    if (state !== null && state.failures > 0) await this.store.clearSignatureFailures(ak, address);
  }

  /** Lifts the locks (and forgets the failures) of `ak`, from `address` or every address; audited when something changed. */
  async unlock(ak: string, address: string | null, actor: Actor, projectId: string | null = null): Promise<SignatureFailureRecord[]> {
    const removed = await this.store.clearSignatureFailures(ak, address);
    if (removed.length > 0) {
      const now = this.clock.now();
      const lifted = removed.filter((r) => r.lockedUntil !== null && r.lockedUntil > now).map((r) => r.address);
      // The audit record is also the log line (info): an operator's act, not a warning.
      await this.auditor.record('ak-unlocked', {
        projectId, target: `ak:${ak}`, actorUserId: actor.userId, actorCredential: actor.credential,
        detail: { address: address ?? '*', locksLifted: lifted.join(',') || null, recordsCleared: removed.length },
      });
    }
    return removed;
  }

  /** Deletes expired failure records. */
  purge(): Promise<number> {
    return this.store.purgeSignatureFailures(this.clock.now());
  }

  private async reportLock(ak: string, address: string, until: number, ctx: FailureContext): Promise<void> {
    const untilIso = new Date(until).toISOString();
    this.log.warn({ ak, address, until: untilIso, requestId: ctx.requestId, knownKey: ctx.knownKey },
      'access key locked for one source address after repeated signature failures');
    try {
      await this.auditor.record('ak-locked', {
        projectId: ctx.projectId, target: `ak:${ak}`, requestId: ctx.requestId, clientAddress: address,
        detail: { until: untilIso, failures: this.opts.threshold, knownKey: ctx.knownKey },
      });
    } catch (e) {
      // The lock holds either way; the caller still gets its 401.
      this.log.error({ err: e, ak, address }, 'could not write the audit record of an access-key lock');
    }
  }
}
