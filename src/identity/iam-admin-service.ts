/**
 * The identity lifecycle, as Huawei IAM's API and the CLI drive it: permanent access keys (create,
 * list, show, activate/deactivate, delete; 2 per user), temporary credentials, users (create, list,
 * show, enable/disable, password, delete) and projects (create, list, show, update, delete).
 *
 * Who may do what (Huawei's rules): a domain administrator (the `admin` group) manages everything
 * in its domain; a user manages their own access keys and password and reads themself; the rest is
 * ForbiddenError (403). A CLI operator (no principal) may do everything.
 *
 * What ends access ends it everywhere at once: the change is in the store first; a
 * `credential-revoked` change drops the key or user from every node's cache (within
 * `cacheFeedLagMs`, see sessions/change-follower.ts) and closes the live consoles on every proxy
 * node, and unused console URLs issued through the credential are revoked in the store.
 * Every change is an audit record with its actor, target, request id and client address.
 */
import { randomBytes } from 'node:crypto';
import type { Auditor } from '../audit/auditor.js';
import type { AuditKind } from '../audit/types.js';
import type { Clock } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { ChangeFeedStore } from '../sessions/types.js';
import type { ConsoleTokenStore } from '../tokens/types.js';
import { ALNUM, HEX32, UPPER_ALNUM, hexId, randomString, sha256Hex } from '../util/ids.js';
import { isValidActionPattern } from './actions.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import type { IdentityService } from './identity-service.js';
import {
  MAX_PERMANENT_KEYS, type AccessKey, type AccessKeyStatus, type Actor, type IdentityStore, type Principal, type Project, type User,
} from './types.js';

/** Who asks, for authorization and the audit record. `principal` null: a CLI operator. */
export interface Caller {
  readonly principal: Principal | null;
  readonly actor: Actor;
  readonly requestId?: string | null;
  readonly clientAddress?: string | null;
}

/** A credential revoked (access key, or every credential of a user): close its consoles. */
export interface CredentialRevocation {
  /** `ak:<AK>` or `user:<id>`. */
  readonly credential: string;
  readonly at: number;
}

/** Huawei's bounds of a temporary credential's life. */
export const TEMPORARY_MIN_SECONDS = 900;
export const TEMPORARY_MAX_SECONDS = 86_400;

const DESCRIPTION_MAX = 255;

function checkDescription(d: string | undefined): string | undefined {
  if (d === undefined) return undefined;
  if (d.length > DESCRIPTION_MAX || /[\u0000-\u001f\u007f]/.test(d)) throw new ValidationError(`description must be at most ${DESCRIPTION_MAX} printable characters`, 'description');
  return d;
}

const NAME_RE = /^[\p{L}\p{N} ._\-@]{1,64}$/u;
function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name)) throw new ValidationError(`${what} must be 1-64 letters, digits, spaces or . _ - @`, what);
}
function checkPassword(pw: string): void {
  if (pw.length < 8 || pw.length > 128) throw new ValidationError('password must be 8-128 characters', 'password');
}

/** The actor of a principal's changes. */
export function actorOf(p: Principal): Actor {
  return { userId: p.userId, credential: p.credentialId };
}

export class IamAdminService {
  private readonly sinks: Array<(r: CredentialRevocation) => void> = [];

  constructor(
    private readonly identity: IdentityService,
    private readonly store: IdentityStore,
    private readonly consoleTokens: ConsoleTokenStore,
    private readonly changes: ChangeFeedStore,
    private readonly auditor: Auditor,
    private readonly box: SecretBox,
    private readonly clock: Clock,
  ) {}

  /** Same-process listeners (the proxy of a `serve` node): other nodes hear it through the change feed. */
  onRevoke(sink: (r: CredentialRevocation) => void): void {
    this.sinks.push(sink);
  }

  // ---- authorization

  /** The domain administrator of `domainId`, or a CLI operator; else 403 naming `action`. */
  private requireAdmin(c: Caller, domainId: string, action: string): void {
    if (c.principal === null) return;
    this.identity.requireDomainAdmin(c.principal, action, domainId);
  }

  /** The user themself, their domain's administrator, or a CLI operator. */
  private requireSelfOrAdmin(c: Caller, user: User, action: string): void {
    if (c.principal === null || c.principal.userId === user.id) return;
    this.identity.requireDomainAdmin(c.principal, action, user.domainId);
  }

  /** An identity change's record: of `domainId` (an administrator's audit search of the domain finds it), and of `projectId` when it has one. */
  private async audit(kind: AuditKind, c: Caller, domainId: string, target: string, detail: Record<string, string | number | boolean | null> = {}, projectId: string | null = null): Promise<void> {
    await this.auditor.record(kind, {
      projectId, domainId, detail, actorUserId: c.actor.userId, actorCredential: c.actor.credential, target,
      requestId: c.requestId ?? null, clientAddress: c.clientAddress ?? null,
    });
  }

  /**
   * Revokes unused console URLs issued through `credential` (`user:<id>`: all of that user's;
   * `ak:<AK>`: that key's, whose user is `userId`) and closes its consoles on every node.
   */
  private async revokeConsoles(credential: string, userId: string): Promise<void> {
    const at = this.clock.now();
    const by = credential.startsWith('user:') ? { userId } : { issuedBy: credential, userId };
    await this.consoleTokens.revokeIssuedConsoleTokens(by, 'credential-revoked', at);
    // This node's caches at once (the others' through the feed).
    this.identity.invalidate({ kind: 'credential-revoked', serverId: null, credential });
    await this.changes.appendChange({ at, kind: 'credential-revoked', serverId: null, sessionId: null, credential });
    this.identity.invalidate({ kind: 'credential-revoked', serverId: null, credential });
    for (const sink of this.sinks) sink({ credential, at });
  }

  /**
   * Whether a console's issuer still stands: its user exists and is enabled and, for an access
   * key, the key exists, is active and (temporary) unexpired. Unknown issuers (tokens issued before
   * issuers were recorded) stand.
   */
  async credentialStands(issuedBy: string | null, userId: string | null): Promise<boolean> {
    if (userId !== null) {
      const u = await this.store.getUser(userId);
      if (!u || u.enabled === false) return false;
    }
    if (issuedBy?.startsWith('ak:')) {
      const k = await this.store.getAccessKey(issuedBy.slice(3));
      if (!k || (k.status ?? 'active') === 'inactive' || (k.expiresAt != null && k.expiresAt <= this.clock.now())) return false;
    }
    return true;
  }

  // ---- lookups (NotFoundError for what the caller may not see in another domain too: no existence leak)

  private async userIn(c: Caller, id: string): Promise<User> {
    const u = HEX32.test(id) ? await this.store.getUser(id) : null;
    if (!u || (c.principal !== null && c.principal.domainId !== u.domainId)) throw new NotFoundError('user', id);
    return u;
  }

  private async keyIn(c: Caller, ak: string): Promise<{ key: AccessKey; user: User }> {
    const key = /^[A-Z0-9]{1,64}$/.test(ak) ? await this.store.getAccessKey(ak) : null;
    const user = key && (key.expiresAt ?? null) === null ? await this.store.getUser(key.userId) : null;
    if (!key || !user || (c.principal !== null && c.principal.domainId !== user.domainId)) throw new NotFoundError('access key', ak);
    return { key, user };
  }

  private async projectIn(c: Caller, id: string): Promise<Project> {
    const p = HEX32.test(id) ? await this.store.getProject(id) : null;
    if (!p || (c.principal !== null && c.principal.domainId !== p.domainId)) throw new NotFoundError('project', id);
    return p;
  }

  // ---- permanent access keys

  /**
   * Creates a permanent key for `userId` (Huawei: `credential.user_id`), acting in `projectId`
   * (default: the caller's project; a CLI operator must name one). 400-class ConflictError
   * `akSkNumExceed` when the user has 2 permanent keys already.
   */
  async createAccessKey(c: Caller, input: { userId: string; description?: string; projectId?: string; actions?: readonly string[] }): Promise<{ key: AccessKey; sk: string; user: User }> {
    const user = await this.userIn(c, input.userId);
    this.requireSelfOrAdmin(c, user, 'iam:credentials:createCredential');
    const description = checkDescription(input.description) ?? '';
    const projectId = input.projectId ?? c.principal?.projectId;
    if (projectId === undefined) throw new ValidationError('a project is required: the project the key acts for', 'project');
    const project = await this.projectIn(c, projectId);
    if (project.domainId !== user.domainId) throw new ValidationError('the project belongs to another domain than the user', 'project');
    if (input.actions !== undefined && (input.actions.length === 0 || !input.actions.every(isValidActionPattern))) {
      throw new ValidationError('actions must be action patterns such as ecs:cloudServers:vnc or * (at least one)', 'actions');
    }
    const ak = randomString(20, UPPER_ALNUM);
    const sk = randomString(40, ALNUM);
    const key: AccessKey = {
      ak, userId: user.id, projectId: project.id, skSealed: this.box.seal(sk, `sk:${ak}`), actions: input.actions ? [...input.actions] : ['*'],
      createdAt: this.clock.now(), status: 'active', description, expiresAt: null, securityTokenHash: null, issuedBy: null,
    };
    if (!(await this.store.insertPermanentAccessKey(key, MAX_PERMANENT_KEYS))) throw new KeyLimitError();
    await this.audit('ak-created', c, user.domainId, `ak:${ak}`, { userId: user.id, project: project.id }, project.id);
    return { key, sk, user };
  }

  /** The permanent keys of `userId` (default: the caller's own). */
  async listAccessKeys(c: Caller, userId?: string): Promise<AccessKey[]> {
    const id = userId ?? c.principal?.userId;
    if (id === undefined) throw new ValidationError('a user is required', 'user');
    const user = await this.userIn(c, id);
    this.requireSelfOrAdmin(c, user, 'iam:credentials:listCredentials');
    return (await this.store.listAccessKeys(user.id)).filter((k) => (k.expiresAt ?? null) === null);
  }

  async showAccessKey(c: Caller, ak: string): Promise<AccessKey> {
    const { key, user } = await this.keyIn(c, ak);
    this.requireSelfOrAdmin(c, user, 'iam:credentials:getCredential');
    return key;
  }

  /** Activates or deactivates a key, or changes its description. Deactivating ends its consoles. */
  async updateAccessKey(c: Caller, ak: string, patch: { status?: AccessKeyStatus; description?: string }): Promise<AccessKey> {
    const { key, user } = await this.keyIn(c, ak);
    this.requireSelfOrAdmin(c, user, 'iam:credentials:updateCredential');
    const description = checkDescription(patch.description);
    const after = await this.store.updateAccessKey(key.ak, { ...(patch.status ? { status: patch.status } : {}), ...(description !== undefined ? { description } : {}) });
    if (!after) throw new NotFoundError('access key', ak);
    const changed = patch.status !== undefined && patch.status !== (key.status ?? 'active');
    if (changed && patch.status === 'inactive') await this.revokeConsoles(`ak:${key.ak}`, key.userId);
    await this.audit(changed ? (patch.status === 'inactive' ? 'ak-deactivated' : 'ak-activated') : 'ak-updated', c, user.domainId, `ak:${key.ak}`,
      { userId: user.id, status: after.status ?? 'active', ...(description !== undefined ? { description: true } : {}) }, key.projectId);
    return after;
  }

  /** Deletes a key: refused at once everywhere; its consoles end. */
  async deleteAccessKey(c: Caller, ak: string): Promise<void> {
    const { key, user } = await this.keyIn(c, ak);
    this.requireSelfOrAdmin(c, user, 'iam:credentials:deleteCredential');
    if (!(await this.store.deleteAccessKey(key.ak))) throw new NotFoundError('access key', ak);
    await this.revokeConsoles(`ak:${key.ak}`, key.userId);
    await this.audit('ak-deleted', c, user.domainId, `ak:${key.ak}`, { userId: user.id }, key.projectId);
  }

  // ---- temporary credentials

  /**
   * Temporary AK/SK + security token for the user of IAM token `token` (the caller's own, or one
   * of theirs named in the body), acting in that token's project, for 15 min to 24 h.
   */
  async createTemporaryCredential(c: Caller, token: string, durationSeconds: number): Promise<{ ak: string; sk: string; securityToken: string; expiresAt: number }> {
    if (!Number.isInteger(durationSeconds) || durationSeconds < TEMPORARY_MIN_SECONDS || durationSeconds > TEMPORARY_MAX_SECONDS) {
      throw new ValidationError(`duration_seconds must be an integer from ${TEMPORARY_MIN_SECONDS} to ${TEMPORARY_MAX_SECONDS}`, 'duration_seconds');
    }
    const p = await this.identity.verifyIamToken(token);
    if (c.principal !== null && c.principal.userId !== p.userId) throw new ForbiddenError('iam:securitytokens:create');
    const now = this.clock.now();
    const ak = randomString(20, UPPER_ALNUM);
    const sk = randomString(40, ALNUM);
    const securityToken = 'gQ' + randomBytes(96).toString('base64url');
    const expiresAt = now + durationSeconds * 1000;
    const user = await this.store.getUser(p.userId);
    await this.store.insertAccessKey({
      ak, userId: p.userId, projectId: p.projectId, skSealed: this.box.seal(sk, `sk:${ak}`), actions: user?.actions ?? ['*'], createdAt: now,
      status: 'active', description: '', expiresAt, securityTokenHash: sha256Hex(securityToken), issuedBy: p.issuer,
    });
    await this.audit('ak-temporary-created', c, p.domainId, `ak:${ak}`, { userId: p.userId, expiresAt: new Date(expiresAt).toISOString() }, p.projectId);
    return { ak, sk, securityToken, expiresAt };
  }

  // ---- users

  async createUser(c: Caller, input: { domainId?: string; name: string; password?: string; enabled?: boolean; description?: string; admin?: boolean }): Promise<User> {
    const domainId = input.domainId ?? c.principal?.domainId;
    if (domainId === undefined) throw new ValidationError('a domain is required', 'domain');
    this.requireAdmin(c, domainId, 'iam:users:createUser');
    const domain = HEX32.test(domainId) ? await this.store.getDomain(domainId) : null;
    if (!domain) throw new NotFoundError('domain', domainId);
    checkName('name', input.name);
    // Huawei creates users without a password (they then cannot log in): a random one stands in.
    const password = input.password ?? randomBytes(32).toString('base64url');
    checkPassword(password);
    const u: User = {
      id: hexId(), domainId, name: input.name, passwordHash: await hashPassword(password), actions: ['*'],
      createdAt: this.clock.now(), enabled: input.enabled ?? true, admin: input.admin ?? false, description: checkDescription(input.description) ?? '',
    };
    try {
      await this.store.insertUser(u);
    } catch (e) {
      if (e instanceof ConflictError) throw new ConflictError(`a user named ${JSON.stringify(input.name)} already exists in this domain`);
      throw e;
    }
    await this.audit('user-created', c, domainId, `user:${u.id}`, { name: u.name, domain: domainId, admin: u.admin === true, enabled: u.enabled !== false });
    return u;
  }

  async listUsers(c: Caller, domainId?: string): Promise<User[]> {
    const d = domainId ?? c.principal?.domainId;
    if (d === undefined) throw new ValidationError('a domain is required', 'domain');
    this.requireAdmin(c, d, 'iam:users:listUsers');
    return this.store.listUsers(d);
  }

  async showUser(c: Caller, id: string): Promise<User> {
    const u = await this.userIn(c, id);
    this.requireSelfOrAdmin(c, u, 'iam:users:getUser');
    return u;
  }

  /**
   * An administrator's change of a user: enable/disable, name, description, password. Disabling
   * ends the user's IAM tokens, refuses their keys and temporary credentials, and closes the
   * consoles they opened; a new password ends their IAM tokens.
   */
  async updateUser(c: Caller, id: string, patch: { enabled?: boolean; description?: string; name?: string; password?: string }): Promise<User> {
    const u = await this.userIn(c, id);
    this.requireAdmin(c, u.domainId, 'iam:users:updateUser');
    if (patch.name !== undefined) checkName('name', patch.name);
    if (patch.password !== undefined) checkPassword(patch.password);
    const description = checkDescription(patch.description);
    if (patch.enabled === false && c.principal?.userId === u.id) throw new ValidationError('an administrator cannot disable themself', 'enabled');
    let after: User | null;
    try {
      after = await this.store.updateUser(u.id, {
        ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}), ...(description !== undefined ? { description } : {}),
        ...(patch.name !== undefined ? { name: patch.name } : {}), ...(patch.password !== undefined ? { passwordHash: await hashPassword(patch.password) } : {}),
      });
    } catch (e) {
      if (e instanceof ConflictError) throw new ConflictError(`a user named ${JSON.stringify(patch.name)} already exists in this domain`);
      throw e;
    }
    if (!after) throw new NotFoundError('user', id);
    const disabled = patch.enabled === false && u.enabled !== false;
    let tokensRevoked = 0;
    if (disabled || patch.password !== undefined) tokensRevoked = (await this.store.deleteUserIamTokens(u.id)).length;
    if (disabled) await this.revokeConsoles(`user:${u.id}`, u.id);
    const kind: AuditKind = disabled ? 'user-disabled' : patch.enabled === true && u.enabled === false ? 'user-enabled' : 'user-updated';
    await this.audit(kind, c, u.domainId, `user:${u.id}`, {
      enabled: after.enabled !== false, tokensRevoked, ...(patch.password !== undefined ? { password: true } : {}), ...(patch.name !== undefined ? { name: patch.name } : {}),
    });
    return after;
  }

  /**
   * A user's own password change (Keystone: the original password is required). Ends every IAM
   * token of theirs, the caller's too.
   */
  async changePassword(c: Caller, id: string, original: string, password: string): Promise<void> {
    const u = await this.userIn(c, id);
    if (c.principal !== null && c.principal.userId !== u.id) throw new ForbiddenError('identity:update_user_password');
    checkPassword(password);
    if (c.principal !== null && !(await verifyPassword(original, u.passwordHash))) throw new ValidationError('the original password is wrong', 'original_password');
    if (password === original) throw new ValidationError('the new password must differ from the old one', 'password');
    await this.store.updateUser(u.id, { passwordHash: await hashPassword(password) });
    const revoked = await this.store.deleteUserIamTokens(u.id);
    await this.audit('user-password-changed', c, u.domainId, `user:${u.id}`, { tokensRevoked: revoked.length });
  }

  /** Deletes a user with their keys and tokens; their consoles end. Not oneself. */
  async deleteUser(c: Caller, id: string): Promise<void> {
    const u = await this.userIn(c, id);
    this.requireAdmin(c, u.domainId, 'iam:users:deleteUser');
    if (c.principal?.userId === u.id) throw new ValidationError('an administrator cannot delete themself', 'user');
    if (!(await this.store.deleteUser(u.id))) throw new NotFoundError('user', id);
    await this.revokeConsoles(`user:${u.id}`, u.id);
    await this.audit('user-deleted', c, u.domainId, `user:${u.id}`, { name: u.name });
  }

  // ---- projects

  async createProject(c: Caller, input: { name: string; domainId?: string; description?: string }): Promise<Project> {
    const domainId = input.domainId ?? c.principal?.domainId;
    if (domainId === undefined) throw new ValidationError('a domain is required', 'domain');
    this.requireAdmin(c, domainId, 'iam:projects:createProject');
    const domain = HEX32.test(domainId) ? await this.store.getDomain(domainId) : null;
    if (!domain) throw new NotFoundError('domain', domainId);
    checkName('name', input.name);
    const p: Project = { id: hexId(), name: input.name, domainId, createdAt: this.clock.now(), description: checkDescription(input.description) ?? '' };
    try {
      await this.store.insertProject(p);
    } catch (e) {
      if (e instanceof ConflictError) throw new ConflictError(`a project named ${JSON.stringify(input.name)} already exists in this domain`);
      throw e;
    }
    await this.audit('project-created', c, domainId, `project:${p.id}`, { name: p.name }, p.id);
    return p;
  }

  /** The projects of the caller's domain (every user of a domain may scope a token to any of them). */
  async listProjects(c: Caller, filter: { domainId?: string; name?: string } = {}): Promise<Project[]> {
    const all = await this.store.listProjects();
    const domainId = c.principal?.domainId ?? filter.domainId;
    return all.filter((p) => (domainId === undefined || p.domainId === domainId) && (filter.domainId === undefined || p.domainId === filter.domainId) &&
      (filter.name === undefined || p.name === filter.name));
  }

  async showProject(c: Caller, id: string): Promise<Project> {
    return this.projectIn(c, id);
  }

  async updateProject(c: Caller, id: string, patch: { name?: string; description?: string }): Promise<Project> {
    const p = await this.projectIn(c, id);
    this.requireAdmin(c, p.domainId, 'iam:projects:updateProject');
    if (patch.name !== undefined) checkName('name', patch.name);
    const description = checkDescription(patch.description);
    let after: Project | null;
    try {
      after = await this.store.updateProject(p.id, { ...(patch.name !== undefined ? { name: patch.name } : {}), ...(description !== undefined ? { description } : {}) });
    } catch (e) {
      if (e instanceof ConflictError) throw new ConflictError(`a project named ${JSON.stringify(patch.name)} already exists in this domain`);
      throw e;
    }
    if (!after) throw new NotFoundError('project', id);
    await this.audit('project-updated', c, p.domainId, `project:${p.id}`, { ...(patch.name !== undefined ? { name: patch.name } : {}), ...(description !== undefined ? { description: true } : {}) }, p.id);
    return after;
  }

  /** Deletes a project no server and no access key refers to (ConflictError otherwise). */
  async deleteProject(c: Caller, id: string): Promise<void> {
    const p = await this.projectIn(c, id);
    this.requireAdmin(c, p.domainId, 'iam:projects:deleteProject');
    const r = await this.store.deleteProject(p.id);
    if (r === 'missing') throw new NotFoundError('project', id);
    if (r === 'in-use') throw new ConflictError(`project ${p.id} still has servers or access keys: remove them first`);
    await this.audit('project-deleted', c, p.domainId, `project:${p.id}`, { name: p.name }, p.id);
  }
}

/** Huawei's answer when a user already has 2 permanent access keys (400 `akSkNumExceed`). */
export class KeyLimitError extends ValidationError {
  constructor() {
    super(`akSkNumExceed: a user may have at most ${MAX_PERMANENT_KEYS} permanent access keys; delete one first`, 'credential');
  }
}
