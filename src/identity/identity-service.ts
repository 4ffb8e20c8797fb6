/**
 * Identity: domains, projects, users, access keys and IAM tokens; authentication of API calls by
 * AK/SK signature or IAM token; authorization of an action on a project.
 */
import { createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../clock.js';
import { AuthError, ConflictError, ForbiddenError, NotFoundError, ProjectMismatchError, ValidationError } from '../errors.js';
import { tokenRef } from '../log.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { Invalidation } from '../sessions/change-follower.js';
import { NodeCache, type NodeCacheOptions } from '../util/node-cache.js';
import { ALNUM, HEX32, UPPER_ALNUM, hexId, randomString, sha256Hex } from '../util/ids.js';
import { allowedByAll, isValidActionPattern } from './actions.js';
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from './password-hash.js';
import {
  EMPTY_BODY_SHA256, canonicalHeaders, canonicalQuery, canonicalRequest, canonicalUri, parseAuthorization,
  parseSdkDate, sha256Hex as bodySha256, signatureBytes, stringToSign,
} from './sdk-hmac-signer.js';
import type { LoginThrottle } from './login-throttle.js';
import type { SignatureLockout } from './signature-lockout.js';
import {
  ALL_ACTIONS, type AccessKey, type Actor, type Domain, type IamTokenRecord, type IdentityStore, type Principal, type Project,
  type SignatureFailureRecord, type User,
} from './types.js';

export interface IdentityOptions {
  iamTokenTtlMs: number;
  maxSkewMs: number;
}

/** A request as received, for signature verification. */
export interface SignedRequest {
  readonly method: string;
  /** Raw request target: path and query exactly as received. */
  readonly url: string;
  /** Header value by lower-case name. */
  header(name: string): string | undefined;
  /** Raw body bytes as received (empty when none). */
  readonly body: Buffer;
  /** The client's address as the API sees it (behind a trusted proxy: the address it forwarded). */
  readonly sourceAddress: string;
  /** The request's id (X-Request-Id), for the log and audit records. */
  readonly requestId: string | null;
}

/** What protects authentication from abuse: signature lockout, login throttling. */
export interface IdentityGuards {
  readonly lockout: SignatureLockout;
  readonly logins: LoginThrottle;
}

export interface IssuedIamToken {
  readonly token: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly user: User;
  readonly domain: Domain;
  readonly project: Project;
}

const AUTH_PREFIX = 'Incorrect IAM authentication information: ';
const NAME_RE = /^[\p{L}\p{N} ._\-@]{1,64}$/u;

function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name)) throw new ValidationError(`${what} must be 1-64 letters, digits, spaces or . _ - @`, what);
}

function checkActions(actions: readonly string[] | undefined): readonly string[] {
  if (actions === undefined) return [ALL_ACTIONS];
  if (actions.length === 0) throw new ValidationError('actions must not be empty (use * for all)', 'actions');
  for (const a of actions) if (!isValidActionPattern(a)) throw new ValidationError(`invalid action pattern ${JSON.stringify(a)}`, 'actions');
  return [...actions];
}

/** The secret unknown AKs are verified against (see verifySignedRequest). */
const UNKNOWN_KEY_SK = createSecretKey(Buffer.from('unknown-access-key-stand-in-secret-000000', 'utf8'));

/** An access key with its SK opened once (by the master key ring of `ring`), as the key cache holds it. */
interface OpenedKey {
  readonly key: AccessKey;
  readonly sk: KeyObject;
  /** SecretBox.generation it was opened with. */
  readonly ring: number;
}

/** The node's caches of keys and users (see util/node-cache.ts), invalidated through the change feed. */
export type IdentityCacheOptions = Pick<NodeCacheOptions, 'maxEntries' | 'maxAgeMs' | 'trusted'>;

/** The header a signer may send in place of hashing the body itself. */
const CONTENT_SHA = 'x-sdk-content-sha256';
/** What the SDK sends in CONTENT_SHA for bodies it does not hash (non-JSON content types). */
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/**
 * The payload hash the signature must cover: the sha256 of the bytes received.
 * NOTE: X-Sdk-Content-Sha256 stands in for it only when that header is itself signed, and then it
 * must be the hash of the bytes received (or UNSIGNED-PAYLOAD with no body at all). An unsigned
 * one is ignored: otherwise one captured request would let anyone send any body to its path for
 * the whole skew window. UNSIGNED-PAYLOAD with a body is refused: every body this API acts on is
 * JSON, which the SDKs always hash, so a waived body could only be a swapped one.
 */
function signedPayloadHash(req: SignedRequest, signed: readonly string[]): string {
  const bodyHash = req.body.length === 0 ? EMPTY_BODY_SHA256 : bodySha256(req.body);
  if (!signed.includes(CONTENT_SHA)) return bodyHash;
  // Present: every signed header was checked to be in the request.
  const claimed = req.header(CONTENT_SHA)!;
  if (claimed === UNSIGNED_PAYLOAD) {
    if (req.body.length > 0) {
      throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}X-Sdk-Content-Sha256: ${UNSIGNED_PAYLOAD} is accepted only without a body; sign the body's sha256`);
    }
    return claimed;
  }
  if (claimed.toLowerCase() !== bodyHash) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}X-Sdk-Content-Sha256 is not the sha256 of the body received`);
  return claimed;
}

export class IdentityService {
  private readonly keys: NodeCache<OpenedKey>;
  private readonly users: NodeCache<User>;

  constructor(
    private readonly store: IdentityStore,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly opts: IdentityOptions,
    private readonly guards: IdentityGuards,
    cache: IdentityCacheOptions = { maxEntries: 0, maxAgeMs: 0, trusted: () => false },
  ) {
    this.keys = new NodeCache(cache);
    this.users = new NodeCache(cache);
  }

  /**
   * Drops what a change makes stale: `ak:<AK>` the key, `user:<id>` the user and their keys,
   * `all` everything. Revocations of IAM tokens touch nothing here (tokens are not cached).
   */
  invalidate(i: Invalidation): void {
    if (i === 'all') {
      this.keys.clear();
      this.users.clear();
      return;
    }
    const c = i.credential ?? '';
    if (c.startsWith('ak:')) this.keys.delete(c.slice(3));
    else if (c.startsWith('user:')) {
      const id = c.slice(5);
      this.users.delete(id);
      this.keys.deleteWhere((k) => k.key.userId === id);
    }
  }

  /** Cache counters, for the metrics and the benchmarks. */
  cacheStats(): { keys: { hits: number; misses: number; size: number }; users: { hits: number; misses: number; size: number } } {
    return {
      keys: { hits: this.keys.hits, misses: this.keys.misses, size: this.keys.size },
      users: { hits: this.users.hits, misses: this.users.misses, size: this.users.size },
    };
  }

  /**
   * The key with its SK opened: from the cache when it may be served and was opened with the
   * current master key ring. Only usable keys are kept (active, unexpired): a key that refuses
   * is read from the store every time, so its reactivation needs no invalidation.
   */
  private async openedKey(ak: string): Promise<OpenedKey | null> {
    const ring = this.box.generation;
    const hit = this.keys.peek(ak);
    if (hit !== undefined && hit.ring === ring) {
      this.keys.hits++;
      return hit;
    }
    if (hit !== undefined) this.keys.delete(ak);
    return this.keys.get(ak, async () => {
      const key = await this.store.getAccessKey(ak);
      // NOTE: the SK is opened once per key and node; the plaintext lives only in this KeyObject.
      return key ? { key, sk: createSecretKey(Buffer.from(this.box.open(key.skSealed, `sk:${key.ak}`), 'utf8')), ring } : null;
    }, (o) => (o.key.status ?? 'active') === 'active' && (o.key.expiresAt == null || o.key.expiresAt > this.clock.now()) && o.ring === this.box.generation);
  }

  /** The user, from the cache when it may be served (only enabled users are kept). */
  private user(id: string): Promise<User | null> {
    return this.users.get(id, () => this.store.getUser(id), (u) => u.enabled !== false);
  }

  // ---- administration (CLI and demo seeding)

  async ensureDomain(name: string): Promise<Domain> {
    checkName('domain', name);
    const existing = await this.store.getDomainByName(name);
    if (existing) return existing;
    const d: Domain = { id: hexId(), name, createdAt: this.clock.now() };
    try {
      await this.store.insertDomain(d);
      return d;
    } catch (e) {
      // Another process created it meanwhile.
      const again = e instanceof ConflictError ? await this.store.getDomainByName(name) : null;
      if (again) return again;
      throw e;
    }
  }

  async createProject(input: { name: string; domain: string; id?: string }): Promise<Project> {
    checkName('name', input.name);
    if (input.id !== undefined && !HEX32.test(input.id)) throw new ValidationError('project id must be 32 lower-case hex digits', 'id');
    const domain = await this.ensureDomain(input.domain);
    const p: Project = { id: input.id ?? hexId(), name: input.name, domainId: domain.id, createdAt: this.clock.now() };
    try {
      await this.store.insertProject(p);
    } catch (e) {
      if (e instanceof ConflictError) throw new ConflictError(`a project with that id, or named ${JSON.stringify(input.name)} in domain ${JSON.stringify(input.domain)}, already exists`);
      throw e;
    }
    return p;
  }

  async getProject(id: string): Promise<Project> {
    const p = HEX32.test(id) ? await this.store.getProject(id) : null;
    if (!p) throw new NotFoundError('project', id);
    return p;
  }

  listProjects(): Promise<Project[]> {
    return this.store.listProjects();
  }

  /** Creates a user; `admin` puts them in the domain's `admin` group (a domain administrator). */
  async createUser(input: { domain: string; name: string; password: string; actions?: readonly string[]; admin?: boolean; enabled?: boolean; description?: string }): Promise<User> {
    checkName('name', input.name);
    if (input.password.length < 8 || input.password.length > 128) throw new ValidationError('password must be 8-128 characters', 'password');
    const actions = checkActions(input.actions);
    const domain = await this.ensureDomain(input.domain);
    const u: User = {
      id: hexId(), domainId: domain.id, name: input.name, passwordHash: await hashPassword(input.password), actions, createdAt: this.clock.now(),
      enabled: input.enabled ?? true, admin: input.admin ?? false, description: input.description ?? '',
    };
    try {
      await this.store.insertUser(u);
    } catch (e) {
      if (e instanceof ConflictError) throw new ConflictError(`user ${JSON.stringify(input.name)} already exists in domain ${JSON.stringify(input.domain)}`);
      throw e;
    }
    return u;
  }

  async findUser(domainName: string, userName: string): Promise<User> {
    const d = await this.store.getDomainByName(domainName);
    const u = d ? await this.store.getUserByName(d.id, userName) : null;
    if (!u) throw new NotFoundError('user', `${domainName}/${userName}`);
    return u;
  }

  /**
   * Creates an access key for a user acting in one project of the user's domain. The SK is
   * returned once and stored only sealed.
   */
  async createAccessKey(input: { userId: string; projectId: string; actions?: readonly string[] }): Promise<{ ak: string; sk: string; key: AccessKey }> {
    const actions = checkActions(input.actions);
    const user = await this.store.getUser(input.userId);
    if (!user) throw new NotFoundError('user', input.userId);
    const project = await this.getProject(input.projectId);
    if (project.domainId !== user.domainId) throw new ValidationError('the project belongs to another domain than the user', 'project');
    const ak = randomString(20, UPPER_ALNUM);
    const sk = randomString(40, ALNUM);
    const key: AccessKey = {
      ak, userId: user.id, projectId: project.id, skSealed: this.box.seal(sk, `sk:${ak}`), actions,
      createdAt: this.clock.now(),
    };
    await this.store.insertAccessKey(key);
    return { ak, sk, key };
  }

  // ---- IAM tokens

  /**
   * Password authentication scoped to a project (POST /v3/auth/tokens) by a client at `from.address`.
   * Throttled (see login-throttle.ts): RateLimitedError before any hashing when over a bound.
   */
  async issueIamToken(
    input: { domain: string; user: string; password: string; projectId?: string; projectName?: string },
    from: { address: string },
  ): Promise<IssuedIamToken> {
    // The name as given, existing or not: unknown names are throttled like real ones.
    const found = await this.guards.logins.attempt(`${input.domain}\0${input.user}`, from.address, async () => {
      const domain = await this.store.getDomainByName(input.domain);
      const user = domain ? await this.store.getUserByName(domain.id, input.user) : null;
      // NOTE: verify against a dummy hash for unknown users, so timing does not reveal who exists.
      const good = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
      return good && domain && user ? { domain, user } : null;
    });
    if (!found) throw new AuthError('AUTH_INVALID', 'The username or password is wrong.');
    const { domain, user } = found;
    // Told only to whoever knows the password.
    if (user.enabled === false) throw new AuthError('AUTH_INVALID', 'The user is disabled.');
    let project: Project | null = null;
    if (input.projectId !== undefined) project = HEX32.test(input.projectId) ? await this.store.getProject(input.projectId) : null;
    else if (input.projectName !== undefined) project = (await this.store.listProjects()).find((p) => p.domainId === domain.id && p.name === input.projectName) ?? null;
    if (!project || project.domainId !== domain.id) throw new AuthError('AUTH_INVALID', 'The project in the scope does not exist or is not accessible to the user.');
    const token = 'ECT' + randomBytes(48).toString('base64url');
    const issuedAt = this.clock.now();
    const expiresAt = issuedAt + this.opts.iamTokenTtlMs;
    await this.store.insertIamToken({ hash: sha256Hex(token), userId: user.id, projectId: project.id, issuedAt, expiresAt });
    return { token, issuedAt, expiresAt, user, domain, project };
  }

  /** The token's record and user, or an auth error (unknown, revoked, expired, user gone). */
  private async loadIamToken(token: string): Promise<{ rec: IamTokenRecord; user: User }> {
    if (token.length === 0 || token.length > 1024) throw new AuthError('AUTH_TOKEN_INVALID', `${AUTH_PREFIX}token is malformed`);
    const rec = await this.store.getIamToken(sha256Hex(token));
    if (!rec || rec.expiresAt <= this.clock.now()) throw new AuthError('AUTH_TOKEN_INVALID', `${AUTH_PREFIX}the token is unknown, revoked or expired`);
    const user = await this.user(rec.userId);
    if (!user) throw new AuthError('AUTH_TOKEN_INVALID', `${AUTH_PREFIX}the token's user no longer exists`);
    if (user.enabled === false) throw new AuthError('AUTH_TOKEN_INVALID', `${AUTH_PREFIX}the token's user is disabled`);
    return { rec, user };
  }

  async verifyIamToken(token: string): Promise<Principal> {
    const { rec, user } = await this.loadIamToken(token);
    return {
      kind: 'iam-token', admin: user.admin === true, issuer: `token:${rec.hash}`, credentialId: `user:${user.id}`, userId: user.id,
      domainId: user.domainId, projectId: rec.projectId, actionSets: [user.actions],
    };
  }

  /**
   * Details of `subject` for `caller` (GET /v3/auth/tokens). NotFoundError when `subject` is not a
   * valid token; ForbiddenError when it is another user's (Keystone's `identity:validate_token`).
   */
  async inspectIamToken(caller: Principal, subject: string): Promise<IssuedIamToken> {
    const { rec, user } = await this.subjectToken(subject);
    this.authorizeTokenAction(caller, user, 'identity:validate_token');
    const [domain, project] = await Promise.all([this.store.getDomain(user.domainId), this.store.getProject(rec.projectId)]);
    if (!domain || !project) throw new NotFoundError('token', tokenRef(subject));
    return { token: subject, issuedAt: rec.issuedAt, expiresAt: rec.expiresAt, user, domain, project };
  }

  /** Revokes `subject` for `caller` (DELETE /v3/auth/tokens); errors as inspectIamToken's. */
  async revokeIamToken(caller: Principal, subject: string): Promise<void> {
    const { user } = await this.subjectToken(subject);
    this.authorizeTokenAction(caller, user, 'identity:revoke_token');
    // A concurrent revocation may have won: the token is gone either way.
    await this.store.deleteIamToken(sha256Hex(subject));
  }

  /** The subject token's record and user; NotFoundError when it is not a valid token. */
  private async subjectToken(subject: string): Promise<{ rec: IamTokenRecord; user: User }> {
    try {
      return await this.loadIamToken(subject);
    } catch (e) {
      // Only an invalid subject is "not found"; a store failure stays what it is.
      if (e instanceof AuthError) throw new NotFoundError('token', tokenRef(subject));
      throw e;
    }
  }

  /**
   * Who may read or revoke a user's IAM tokens: Keystone allows the token's own user or an
   * administrator (Huawei: the `admin` group of the user's domain).
   */
  private authorizeTokenAction(caller: Principal, tokenUser: User, action: string): void {
    if (caller.userId === tokenUser.id) return;
    if (caller.admin && caller.domainId === tokenUser.domainId) return;
    throw new ForbiddenError(action);
  }

  /**
   * A domain administrator may act on `domainId`; anyone else gets ForbiddenError(`action`)
   * (Huawei's 403). The seam of every administrative call: the IAM routes and the admin API.
   */
  requireDomainAdmin(caller: Principal, action: string, domainId: string = caller.domainId): void {
    if (!caller.admin || caller.domainId !== domainId) throw new ForbiddenError(action);
  }

  /** The caller's domain. */
  async domainOf(p: Principal): Promise<Domain> {
    const d = await this.store.getDomain(p.domainId);
    if (!d) throw new NotFoundError('domain', p.domainId);
    return d;
  }

  /** Deletes expired IAM tokens and temporary access keys; returns how many. */
  async purgeIamTokens(): Promise<number> {
    const now = this.clock.now();
    const [t, k] = await Promise.all([this.store.purgeIamTokens(now), this.store.purgeTemporaryAccessKeys(now)]);
    return t + k;
  }

  // ---- AK/SK

  /** Verifies an `SDK-HMAC-SHA256` signed request. Throws AuthError; returns the principal. */
  async verifySignedRequest(req: SignedRequest): Promise<Principal> {
    const authz = req.header('authorization');
    if (!authz) throw new AuthError('AUTH_MISSING', `${AUTH_PREFIX}no Authorization or X-Auth-Token header`);
    const parsed = parseAuthorization(authz);
    if (!parsed) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}the Authorization header is not a valid SDK-HMAC-SHA256 header`);
    const signed = parsed.signedHeaders;
    if (!signed.includes('x-sdk-date') || !signed.includes('host')) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}SignedHeaders must include host and x-sdk-date`);
    for (let i = 1; i < signed.length; i++) if (signed[i - 1]! >= signed[i]!) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}SignedHeaders must be sorted and unique`);
    for (const h of signed) if (req.header(h) === undefined) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}signed header ${h} is missing from the request`);
    const sdkDate = req.header('x-sdk-date')!;
    const t = parseSdkDate(sdkDate);
    if (t === null) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}X-Sdk-Date must look like 20260101T000000Z`);
    const now = this.clock.now();
    if (Math.abs(now - t) > this.opts.maxSkewMs) {
      throw new AuthError('AUTH_SKEW', `${AUTH_PREFIX}X-Sdk-Date differs from the server time by more than ${Math.round(this.opts.maxSkewMs / 60000)} minutes`);
    }
    const payloadHash = signedPayloadHash(req, signed);
    const address = req.sourceAddress;
    // NOTE: the lock state is read from the store on every call (never cached): a lock set on any
    // node holds on every node at once.
    const [opened, failures] = await Promise.all([this.openedKey(parsed.ak), this.guards.lockout.state(parsed.ak, address)]);
    const key = opened?.key ?? null;
    // NOTE: the lock is per (AK, source address), looked up the same way for unknown AKs: known and
    // unknown AKs get the same answers, byte for byte.
    const lockedFor = this.guards.lockout.lockedForSeconds(failures);
    if (lockedFor > 0) throw new AuthError('AUTH_LOCKED', `${AUTH_PREFIX}the access key is locked for requests from this address for ${lockedFor} s after repeated signature failures`);
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    const cq = canonicalQuery(q === -1 ? '' : req.url.slice(q + 1));
    const ch = canonicalHeaders(signed, (n) => req.header(n));
    // NOTE: an unknown AK is verified against a stand-in secret: the same work and the same answer
    // as a wrong SK (no key enumeration, by timing or by text).
    const sk = opened ? opened.sk : UNKNOWN_KEY_SK;
    const expected = Buffer.from(parsed.signature, 'hex');
    let good = false;
    // Node/Java SDKs encode the path as sent; Python/Go decode first. Accept either.
    const asSent = canonicalUri(path, false);
    const decoded = canonicalUri(path, true);
    for (const uri of decoded === asSent ? [asSent] : [asSent, decoded]) {
      if (uri === null || cq === null) continue;
      const canon = canonicalRequest({ method: req.method, canonicalUri: uri, canonicalQuery: cq, canonicalHeaders: ch, signedHeaders: signed, payloadHash });
      if (timingSafeEqual(signatureBytes(sk, stringToSign(sdkDate, canon)), expected)) good = true;
    }
    if (!good || !key) {
      const outcome = await this.guards.lockout.failure(parsed.ak, address, { requestId: req.requestId, projectId: key?.projectId ?? null, knownKey: key !== null });
      const nowLockedFor = this.guards.lockout.lockedForSeconds(outcome);
      if (nowLockedFor > 0) throw new AuthError('AUTH_LOCKED', `${AUTH_PREFIX}verify aksk signature fail; the access key is now locked for requests from this address for ${nowLockedFor} s`);
      throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}verify aksk signature fail`);
    }
    await this.guards.lockout.success(key.ak, address, failures);
    // Only a caller who holds the SK learns that a key is inactive or expired.
    if ((key.status ?? 'active') === 'inactive') throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}the access key is inactive`);
    if (key.expiresAt !== undefined && key.expiresAt !== null) this.checkTemporary(key, req, signed, now);
    const user = await this.user(key.userId);
    if (!user) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}the access key's user no longer exists`);
    if (user.enabled === false) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}the access key's user is disabled`);
    // GlobalCredentials (the IAM SDK) sign the domain id they act in: it must be the key's.
    const domainHeader = req.header('x-domain-id');
    if (domainHeader !== undefined && domainHeader !== user.domainId) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}X-Domain-Id is not the domain of the access key's user`);
    return {
      kind: 'aksk', admin: user.admin === true, issuer: `ak:${key.ak}`, credentialId: `ak:${key.ak}`, userId: user.id, domainId: user.domainId,
      projectId: key.projectId, actionSets: [user.actions, key.actions],
    };
  }

  /**
   * Temporary credentials work only with their security token, sent in a signed X-Security-Token
   * (as the SDKs send it), and only until they expire.
   */
  private checkTemporary(key: AccessKey, req: SignedRequest, signed: readonly string[], now: number): void {
    const given = req.header('x-security-token');
    if (given === undefined || !signed.includes('x-security-token')) {
      throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}a temporary access key needs its security token in a signed X-Security-Token header`);
    }
    const expected = Buffer.from(key.securityTokenHash ?? '', 'hex');
    const got = Buffer.from(sha256Hex(given), 'hex');
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}the security token is not the temporary access key's`);
    if (key.expiresAt! <= now) throw new AuthError('AUTH_INVALID', `${AUTH_PREFIX}the temporary access key has expired`);
  }

  /**
   * Lifts the locks of `ak` (from `address`, or from every address) and forgets its failures.
   * NotFoundError when the AK is unknown and has nothing to lift.
   */
  async unlockAccessKey(ak: string, address: string | null, actor: Actor): Promise<SignatureFailureRecord[]> {
    if (address !== null && isIP(address) === 0) throw new ValidationError(`address must be an IPv4 or IPv6 address, got ${JSON.stringify(address.slice(0, 64))}`, 'address');
    const key = await this.store.getAccessKey(ak);
    // The key's project names the record, so that its domain's administrator finds it.
    const removed = await this.guards.lockout.unlock(ak, address, actor, key?.projectId ?? null);
    if (removed.length === 0 && !key) throw new NotFoundError('access key', ak);
    return removed;
  }

  /** Deletes expired signature-failure records. */
  purgeSignatureFailures(): Promise<number> {
    return this.guards.lockout.purge();
  }

  /** Project scope, then action: Common.0018 before Pdp.0001, as Huawei answers. */
  authorize(p: Principal, projectId: string, action: string): void {
    if (p.projectId !== projectId) throw new ProjectMismatchError();
    if (!allowedByAll(p.actionSets, action)) throw new ForbiddenError(action);
  }
}
