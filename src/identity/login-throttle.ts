/**
 * Throttling password logins (POST /v3/auth/tokens), per node.
 *
 * A password check costs one scrypt (tens of milliseconds of CPU), so a flood of bad logins would
 * otherwise take the CPU from everyone. Three bounds, all answered 429 before any hashing:
 * - concurrency: a few checks run at once, a short queue waits, and one source address may hold
 *   only a couple of those places, so one client cannot make others wait; a user logging in from
 *   an address it logged in from before has a queue of its own, served first, so that a flood from
 *   many addresses cannot crowd it out;
 * - per address: an address that failed too often this minute is refused until the minute ends;
 * - per user name: a name that failed too often this minute (from any address) is refused until the
 *   minute ends, except from addresses it logged in from successfully in the last day.
 *
 * NOTE: a user under attack is not locked out: the per-user refusal lasts only while failures keep
 * coming (fixed one-minute windows) and never applies where the user already logs in from. Names
 * that do not exist are counted the same way, so the answers do not reveal which users exist.
 */
import type { Clock } from '../clock.js';
import { RateLimitedError } from '../errors.js';
import { ConcurrencyGate, GateFullError } from '../util/concurrency-gate.js';
import { RateLimiter } from '../util/rate-limiter.js';

export interface LoginThrottleOptions {
  /** Password checks running at once. */
  readonly concurrency: number;
  /** Logins waiting for a check; beyond, 429 at once. */
  readonly queue: number;
  /** Logins one address may have running or waiting. */
  readonly pendingPerAddress: number;
  /** Failed logins per address per minute (all users); 0 = unlimited. */
  readonly failuresPerAddress: number;
  /** Failed logins per user name per minute (all addresses); 0 = unlimited. */
  readonly failuresPerUser: number;
}

const WINDOW_MS = 60_000;
/** How long an address where a user logged in stays exempt from that user's throttle. */
const KNOWN_ADDRESS_MS = 24 * 3600_000;
/** Most (user, address) pairs remembered as known; the oldest go first. */
const MAX_KNOWN = 100_000;

export class LoginThrottle {
  readonly gate: ConcurrencyGate;
  private readonly byAddress: RateLimiter;
  private readonly byUser: RateLimiter;
  /** `user \0 address` -> until when the address is known for the user. */
  private readonly known = new Map<string, number>();

  constructor(private readonly clock: Clock, opts: LoginThrottleOptions) {
    this.gate = new ConcurrencyGate({ maxRunning: opts.concurrency, maxQueued: opts.queue, maxPerKey: opts.pendingPerAddress });
    this.byAddress = new RateLimiter(opts.failuresPerAddress, WINDOW_MS, clock);
    this.byUser = new RateLimiter(opts.failuresPerUser, WINDOW_MS, clock);
  }

  /**
   * Runs a password check for `user` (a domain-qualified name, as given) from `address` within the
   * bounds; RateLimitedError (429) when it may not run. `check` resolves to what the login found
   * when the password was right, null when not; failures and successes are counted here.
   */
  async attempt<T>(user: string, address: string, check: () => Promise<T | null>): Promise<T | null> {
    const addressFor = this.byAddress.blockedForSeconds(address);
    if (addressFor > 0) throw new RateLimitedError(`Too many failed logins from this address: retry in ${addressFor} s.`, addressFor);
    const userFor = this.byUser.blockedForSeconds(user);
    if (userFor > 0 && !this.isKnown(user, address)) {
      throw new RateLimitedError(`Too many failed logins for this user: retry in ${userFor} s.`, userFor);
    }
    let found: T | null;
    try {
      // Where the user logged in before, it goes ahead of strangers in the queue.
      found = await this.gate.run(address, check, this.isKnown(user, address));
    } catch (e) {
      if (!(e instanceof GateFullError)) throw e;
      throw new RateLimitedError(e.reason === 'key' ? 'Too many logins in progress from this address: retry in 1 s.' : 'Too many logins in progress: retry in 1 s.', 1);
    }
    if (found !== null) this.remember(user, address);
    else {
      this.byAddress.hit(address);
      this.byUser.hit(user);
    }
    return found;
  }

  private isKnown(user: string, address: string): boolean {
    const until = this.known.get(`${user}\0${address}`);
    return until !== undefined && until > this.clock.now();
  }

  private remember(user: string, address: string): void {
    const k = `${user}\0${address}`;
    // Re-inserted so that the Map's order stays "least recently seen first".
    this.known.delete(k);
    if (this.known.size >= MAX_KNOWN) this.known.delete(this.known.keys().next().value!);
    this.known.set(k, this.clock.now() + KNOWN_ADDRESS_MS);
  }
}
