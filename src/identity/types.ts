/** Identity domain: domains, projects, users, access keys, IAM tokens, and the IdentityStore port. */

/** The IAM action the remote_console call needs. */
export const ACTION_VNC = 'ecs:cloudServers:vnc';
/** Read-only server calls (ShowServer, ListServersDetails). */
export const ACTION_GET = 'ecs:cloudServers:get';
export const ACTION_LIST = 'ecs:cloudServers:list';
export const ACTION_START = 'ecs:cloudServers:start';
export const ACTION_STOP = 'ecs:cloudServers:stop';
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
}

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
  /** Consecutive signature failures since the last success or lock. */
  readonly failedAttempts: number;
  /** Epoch ms until which the key is locked, or null. */
  readonly lockedUntil: number | null;
}

export interface IamTokenRecord {
  /** sha256 hex of the token; the token itself is never stored. */
  readonly hash: string;
  readonly userId: string;
  readonly projectId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** Outcome of recording one signature failure. */
export interface SignatureFailureOutcome {
  readonly locked: boolean;
  readonly lockedUntil: number | null;
}

/** Persistence port of the identity domain. Implementations: SQLite, PostgreSQL. */
export interface IdentityStore {
  insertDomain(d: Domain): Promise<void>;
  getDomain(id: string): Promise<Domain | null>;
  getDomainByName(name: string): Promise<Domain | null>;
  insertProject(p: Project): Promise<void>;
  getProject(id: string): Promise<Project | null>;
  listProjects(): Promise<Project[]>;
  insertUser(u: User): Promise<void>;
  getUser(id: string): Promise<User | null>;
  getUserByName(domainId: string, name: string): Promise<User | null>;
  insertAccessKey(k: AccessKey): Promise<void>;
  getAccessKey(ak: string): Promise<AccessKey | null>;
  listAccessKeys(userId: string): Promise<AccessKey[]>;
  deleteAccessKey(ak: string): Promise<boolean>;
  /**
   * Atomically counts one signature failure; at `threshold` the key is locked until `now + lockMs`
   * and the count restarts. Concurrent failures on several nodes must all be counted.
   */
  recordSignatureFailure(ak: string, now: number, threshold: number, lockMs: number): Promise<SignatureFailureOutcome>;
  /** Clears the failure count after a good signature. */
  resetSignatureFailures(ak: string): Promise<void>;
  insertIamToken(t: IamTokenRecord): Promise<void>;
  getIamToken(hash: string): Promise<IamTokenRecord | null>;
  deleteIamToken(hash: string): Promise<boolean>;
  /** Deletes tokens that expired before `now`; returns how many. */
  purgeIamTokens(now: number): Promise<number>;
}

/** Who is calling, once authenticated. */
export interface Principal {
  readonly kind: 'aksk' | 'iam-token';
  /** Rate-limit key: `ak:<AK>` or `user:<id>`. */
  readonly credentialId: string;
  readonly userId: string;
  readonly domainId: string;
  readonly projectId: string;
  /** Effective action patterns: a request needs a match in each list (user and key). */
  readonly actionSets: ReadonlyArray<readonly string[]>;
}
