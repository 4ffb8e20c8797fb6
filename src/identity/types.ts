/** Identity domain: domains, projects, users, access keys, IAM tokens, and the IdentityStore port. */

/** The IAM action the remote_console call needs. */
export const ACTION_VNC = 'ecs:cloudServers:vnc';
/** Read-only server calls (ShowServer, ListServersDetails). */
export const ACTION_GET = 'ecs:cloudServers:get';
export const ACTION_LIST = 'ecs:cloudServers:list';
export const ACTION_START = 'ecs:cloudServers:start';
export const ACTION_STOP = 'ecs:cloudServers:stop';
/** Our extension (not a Huawei action): a server's console screenshot. */
export const ACTION_SCREENSHOT = 'ecs:cloudServers:screenshot';
/** Our extension: list and play back console session recordings. */
export const ACTION_RECORDING_GET = 'ecs:cloudServers:getRecording';
/** Every action, the default of users and keys. */
export const ALL_ACTIONS = '*';

export interface Domain {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
}

export interface Project {
  /** 32 lower-case hex digits, like Huawei's project ids. */
  readonly id: string;
  readonly name: string;
  readonly domainId: string;
  readonly createdAt: number;
  readonly description?: string;
}

/** What updateProject may change. */
export interface ProjectPatch {
  readonly name?: string;
  readonly description?: string;
}

export interface User {
  readonly id: string;
  readonly domainId: string;
  readonly name: string;
  /** scrypt hash, see password-hash.ts. */
  readonly passwordHash: string;
  /** Allowed action patterns (`*` matches any run of characters). */
  readonly actions: readonly string[];
  readonly createdAt: number;
  /** A disabled user's IAM tokens, access keys and temporary credentials are refused (default true). */
  readonly enabled?: boolean;
  /** Member of the domain's `admin` group: manages everything in its domain (default false). */
  readonly admin?: boolean;
  readonly description?: string;
}

/** What updateUser may change. */
export interface UserPatch {
  readonly name?: string;
  readonly enabled?: boolean;
  readonly admin?: boolean;
  readonly description?: string;
  readonly passwordHash?: string;
}

/** An access key is refused while `inactive` (Huawei's updatePermanentAccessKey status). */
export type AccessKeyStatus = 'active' | 'inactive';

/** Huawei's limit of permanent access keys per user. */
export const MAX_PERMANENT_KEYS = 2;

export interface AccessKey {
  /** 20 upper-case alphanumerics. */
  readonly ak: string;
  readonly userId: string;
  /** The one project this key acts for. */
  readonly projectId: string;
  /** The secret key, sealed with the master key (never stored in clear). */
  readonly skSealed: string;
  readonly actions: readonly string[];
  readonly createdAt: number;
  /** Default `active`. */
  readonly status?: AccessKeyStatus;
  readonly description?: string;
  /** Temporary credentials (AK/SK + security token): when they stop working. Null or absent: a permanent key. */
  readonly expiresAt?: number | null;
  /** Temporary credentials: sha256 hex of the security token that must accompany every call. */
  readonly securityTokenHash?: string | null;
  /** Temporary credentials: the credential that obtained them (`token:<sha256 of the IAM token>`). */
  readonly issuedBy?: string | null;
}

/** What updateAccessKey may change. */
export interface AccessKeyPatch {
  readonly status?: AccessKeyStatus;
  readonly description?: string;
}

export interface IamTokenRecord {
  /** sha256 hex of the token; the token itself is never stored. */
  readonly hash: string;
  readonly userId: string;
  readonly projectId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** Signature failures of one (AK, source address) pair, while they are remembered. */
export interface SignatureFailureState {
  /** Consecutive failures since the last success or lock. */
  readonly failures: number;
  /** Epoch ms until which the pair is locked, or null (may be in the past). */
  readonly lockedUntil: number | null;
}

/** Outcome of recording one signature failure. */
export interface SignatureFailureOutcome extends SignatureFailureState {
  /** The pair is locked now (by this failure or an earlier one). */
  readonly locked: boolean;
  /** This failure reached the threshold and set the lock. */
  readonly lockedNow: boolean;
}

/** One (AK, address) pair's failure record, as removed by an unlock. */
export interface SignatureFailureRecord extends SignatureFailureState {
  readonly ak: string;
  readonly address: string;
}

/**
 * Persistence port of signature-failure counting: failures per (AK, source address), locks of
 * such pairs. Kept apart from the keys themselves, so that a node-local cache of keys never hides a
 * lock or an unlock: every node reads this store. Counting is atomic across nodes. Unknown AKs are
 * counted like known ones (the answers must not tell them apart). Implementations: SQLite, PostgreSQL.
 */
export interface SignatureFailureStore {
  /** The pair's state, or null when it has none or it expired (no failure for `lockMs`). */
  getSignatureFailures(ak: string, address: string, now: number): Promise<SignatureFailureState | null>;
  /**
   * Atomically counts one failure of the pair (starting over when its record expired); at
   * `threshold` the pair is locked until `now + lockMs` and the count restarts. The record expires
   * `lockMs` after its last failure. Concurrent failures on several nodes must all be counted.
   */
  recordSignatureFailure(ak: string, address: string, now: number, threshold: number, lockMs: number): Promise<SignatureFailureOutcome>;
  /** Removes the records of `ak` (from `address` only, when given); returns what was removed. */
  clearSignatureFailures(ak: string, address: string | null): Promise<SignatureFailureRecord[]>;
  /** Deletes records that expired at `now`; returns how many. */
  purgeSignatureFailures(now: number): Promise<number>;
  /** Keeps at most `maxRows` records, deleting those that expire first; returns how many went. */
  trimSignatureFailures(maxRows: number): Promise<number>;
}

/** Persistence port of the identity domain. Implementations: SQLite, PostgreSQL. */
export interface IdentityStore {
  insertDomain(d: Domain): Promise<void>;
  getDomain(id: string): Promise<Domain | null>;
  getDomainByName(name: string): Promise<Domain | null>;
  insertProject(p: Project): Promise<void>;
  getProject(id: string): Promise<Project | null>;
  listProjects(): Promise<Project[]>;
  /** ConflictError when the new name is taken in the domain; null when there is no such project. */
  updateProject(id: string, patch: ProjectPatch): Promise<Project | null>;
  /** Deletes a project that no server and no access key refers to (`in-use` otherwise). */
  deleteProject(id: string): Promise<'deleted' | 'missing' | 'in-use'>;
  insertUser(u: User): Promise<void>;
  getUser(id: string): Promise<User | null>;
  getUserByName(domainId: string, name: string): Promise<User | null>;
  /** The users of a domain, oldest first. */
  listUsers(domainId: string): Promise<User[]>;
  /** ConflictError when the new name is taken in the domain; null when there is no such user. */
  updateUser(id: string, patch: UserPatch): Promise<User | null>;
  /** Deletes a user with their access keys (permanent and temporary) and IAM tokens, in one transaction. */
  deleteUser(id: string): Promise<boolean>;
  insertAccessKey(k: AccessKey): Promise<void>;
  /**
   * Inserts a permanent key unless its user already has `max` permanent keys (returns false then).
   * Serialized per user, so concurrent creations on several nodes cannot exceed the limit.
   */
  insertPermanentAccessKey(k: AccessKey, max: number): Promise<boolean>;
  getAccessKey(ak: string): Promise<AccessKey | null>;
  /** Every key of the user (permanent and temporary), oldest first. */
  listAccessKeys(userId: string): Promise<AccessKey[]>;
  updateAccessKey(ak: string, patch: AccessKeyPatch): Promise<AccessKey | null>;
  deleteAccessKey(ak: string): Promise<boolean>;
  /** Deletes temporary keys that expired before `now`; returns how many. */
  purgeTemporaryAccessKeys(now: number): Promise<number>;
  insertIamToken(t: IamTokenRecord): Promise<void>;
  getIamToken(hash: string): Promise<IamTokenRecord | null>;
  deleteIamToken(hash: string): Promise<boolean>;
  /** Deletes the IAM tokens of a user (but the one `except`, when given); returns the deleted tokens' hashes. */
  deleteUserIamTokens(userId: string, except?: string): Promise<string[]>;
  /** Deletes tokens that expired before `now`; returns how many. */
  purgeIamTokens(now: number): Promise<number>;
}

/** Who is calling, once authenticated. */
export interface Principal {
  readonly kind: 'aksk' | 'iam-token';
  /** The user is a domain administrator (Huawei's `admin` group of their domain). */
  readonly admin: boolean;
  /**
   * The credential that authenticated this call, as console tokens record their issuer: `ak:<AK>`
   * (a permanent or temporary access key) or `token:<sha256 of the IAM token>`.
   */
  readonly issuer: string;
  /** Rate-limit key: `ak:<AK>` or `user:<id>`. */
  readonly credentialId: string;
  readonly userId: string;
  readonly domainId: string;
  readonly projectId: string;
  /** Effective action patterns: a request needs a match in each list (user and key). */
  readonly actionSets: ReadonlyArray<readonly string[]>;
}

/** Who made a change, for its audit record. */
export interface Actor {
  /** The acting user, when a user acted. */
  readonly userId: string | null;
  /** The acting credential: `ak:<AK>`, `user:<id>` (IAM token), `cli:<os user>` (an operator). */
  readonly credential: string;
}
