/**
 * Typed domain errors. Domain code throws these; each edge (API, proxy, CLI) maps them once.
 * Messages must never contain secrets or token material: they may reach a caller.
 */

/** Stable internal error codes. Edges map these, never the message text. */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'AUTH_MISSING'
  | 'AUTH_INVALID'
  | 'AUTH_SKEW'
  | 'AUTH_LOCKED'
  | 'AUTH_TOKEN_INVALID'
  | 'PROJECT_MISMATCH'
  | 'FORBIDDEN'
  | 'SERVER_NOT_FOUND'
  | 'SERVER_NOT_ACTIVE'
  | 'BODY_EMPTY'
  | 'BODY_INVALID'
  | 'BODY_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'CONSOLE_TOKEN_INVALID'
  | 'CONSOLE_TOKEN_EXPIRED'
  | 'CONSOLE_TOKEN_USED'
  | 'STORE_UNAVAILABLE'
  | 'STORE_MISSING'
  | 'MASTER_KEY_INVALID'
  | 'NOT_READY'
  | 'BACKEND_UNREACHABLE'
  | 'BACKEND_AUTH_FAILED'
  | 'BACKEND_PROTOCOL'
  | 'PROTOCOL'
  | 'INTERNAL';

/** Base class of every error this service throws on purpose. */
export class ConsoleError extends Error {
  readonly code: ErrorCode;
  /** Extra fields safe to show a caller (never secrets). */
  readonly details: Readonly<Record<string, string | number>>;
  constructor(code: ErrorCode, message: string, details: Record<string, string | number> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export class ConfigError extends ConsoleError {
  constructor(readonly option: string, message: string) {
    super('CONFIG_INVALID', `invalid configuration option "${option}": ${message}`, { option });
  }
}

/** Bad input to a domain operation (CLI arguments, API bodies). `field` names what is wrong. */
export class ValidationError extends ConsoleError {
  constructor(message: string, readonly field?: string) {
    super('VALIDATION', message, field ? { field } : {});
  }
}

export class NotFoundError extends ConsoleError {
  constructor(readonly kind: string, readonly id: string) {
    super('NOT_FOUND', `${kind} ${JSON.stringify(id)} not found`, { kind });
  }
}

export class ConflictError extends ConsoleError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/** Authentication failed. `code` says how; the message says which check failed (no secrets). */
export class AuthError extends ConsoleError {
  constructor(code: 'AUTH_MISSING' | 'AUTH_INVALID' | 'AUTH_SKEW' | 'AUTH_LOCKED' | 'AUTH_TOKEN_INVALID', message: string) {
    super(code, message);
  }
}

export class ProjectMismatchError extends ConsoleError {
  constructor() {
    super('PROJECT_MISMATCH', 'The project ID in the URL is different from that in the token.');
  }
}

export class ForbiddenError extends ConsoleError {
  constructor(readonly action: string) {
    super('FORBIDDEN', `Policy doesn't allow ${action} to be performed.`, { action });
  }
}

export class ServerNotFoundError extends ConsoleError {
  constructor(readonly serverId: string) {
    super('SERVER_NOT_FOUND', `Instance[${serverId}] could not be found.`);
  }
}

export class ServerNotActiveError extends ConsoleError {
  constructor(readonly serverId: string, readonly status: string) {
    super('SERVER_NOT_ACTIVE', `The ECS status does not meet requirements. Instance[${serverId}] is ${status}, expected ACTIVE.`, { status });
  }
}

export class RateLimitedError extends ConsoleError {
  constructor(message: string, readonly retryAfterSeconds: number) {
    super('RATE_LIMITED', message, { retryAfterSeconds });
  }
}

/** A console token could not be used. The reason is safe to show; the token never appears. */
export class ConsoleTokenError extends ConsoleError {
  constructor(code: 'CONSOLE_TOKEN_INVALID' | 'CONSOLE_TOKEN_EXPIRED' | 'CONSOLE_TOKEN_USED', message: string) {
    super(code, message);
  }
}

/** The store could not be reached or answered with an unexpected failure. */
export class StoreUnavailableError extends ConsoleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, {}, options);
  }
}

/** A command that only uses a store found none where the configuration points (it creates none). */
export class StoreMissingError extends ConsoleError {
  constructor(where: string) {
    super('STORE_MISSING', `no ecs-console store at ${where}: check --data-dir / --store (ECS_CONSOLE_DATA_DIR, ECS_CONSOLE_STORE), or create one with \`ecs-console init\``);
  }
}

/**
 * The master key is missing, or is not the key the store was initialised with. The message names
 * the key (the configured value and its source, or the key file's path) and the store.
 */
export class MasterKeyError extends ConsoleError {
  constructor(message: string) {
    super('MASTER_KEY_INVALID', message);
  }
}

/**
 * Which step of reaching a console target failed, for the operator (`server check`, the log):
 * the TCP connection, TLS (the handshake, the hypervisor's certificate, its name, our client
 * certificate), the RFB security handshake, the VNC password, the RFB protocol, the hypervisor's
 * management channel (QMP, libvirt), or a kind of console the target does not have.
 */
export type BackendFailure =
  | 'connect' | 'timeout' | 'tls' | 'tls-certificate' | 'tls-name' | 'tls-client-certificate'
  | 'security' | 'password' | 'protocol' | 'qmp' | 'libvirt' | 'unsupported';

const DEFAULT_FAILURE = { BACKEND_UNREACHABLE: 'connect', BACKEND_AUTH_FAILED: 'security', BACKEND_PROTOCOL: 'protocol' } as const;

/**
 * Backend (hypervisor VNC server) failures, shown to the browser as RFB failure reasons (by
 * `code`); `failure` says which step failed. The message is for the operator only (it may carry
 * the backend's own words, sanitized): it never reaches the browser.
 */
export class BackendError extends ConsoleError {
  readonly failure: BackendFailure;
  constructor(code: 'BACKEND_UNREACHABLE' | 'BACKEND_AUTH_FAILED' | 'BACKEND_PROTOCOL', message: string, options?: { cause?: unknown; failure?: BackendFailure }) {
    super(code, message, {}, options);
    this.failure = options?.failure ?? DEFAULT_FAILURE[code];
  }
}

/** A peer broke the protocol (RFB or WebSocket framing). */
export class ProtocolError extends ConsoleError {
  constructor(message: string) {
    super('PROTOCOL', message);
  }
}

export function isConsoleError(e: unknown): e is ConsoleError {
  return e instanceof ConsoleError;
}

/** What makes a node not ready (`/readyz` 503): the check that failed, named in the answer. */
export type ReadinessCheck = 'store' | 'master-key' | 'listener';

/** A readiness check failed: the store cannot be written, the master key is not the store's, or a listener does not accept. */
export class NotReadyError extends ConsoleError {
  constructor(readonly check: ReadinessCheck, message: string, options?: { cause?: unknown }) {
    super('NOT_READY', message, { check }, options);
  }
}

/** The readiness check an error stands for: its own, or the store's (a probe that failed otherwise). */
export function readinessCheckOf(e: unknown): ReadinessCheck {
  return e instanceof NotReadyError ? e.check : 'store';
}
