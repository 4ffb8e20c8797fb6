/** The bundle of store ports an adapter provides. Only app.ts / main.ts pick the adapter. */
import type { AuditStore } from '../audit/types.js';
import type { BackendLockStore } from '../backends/types.js';
import type { IdentityStore, SignatureFailureStore } from '../identity/types.js';
import type { ServerStore } from '../inventory/types.js';
import type { KeyCheckStore } from '../secrets/key-check.js';
import type { RecordingStore } from '../recording/types.js';
import type { ChangeFeedStore, SessionStore } from '../sessions/types.js';
import type { SerialOutputStore } from '../serial/types.js';
import type { ConsoleTokenStore } from '../tokens/types.js';

export interface Stores {
  readonly identity: IdentityStore;
  readonly signatureFailures: SignatureFailureStore;
  readonly servers: ServerStore;
  readonly consoleTokens: ConsoleTokenStore;
  readonly audit: AuditStore;
  readonly sessions: SessionStore;
  readonly changes: ChangeFeedStore;
  /** Locks serialising the one-time VNC password of a VM (qemu-qmp, libvirt targets) across processes. */
  readonly backendLocks: BackendLockStore;
  /** Serial console output, and which node holds each serial port. */
  readonly serialOutput: SerialOutputStore;
  /** Session recording policies and the index of recordings. */
  readonly recordings: RecordingStore;
  /** Which master key the store was initialised with. */
  readonly keyChecks: KeyCheckStore;
  /**
   * Readiness: resolves when the node can write to the store now (a bounded probe that writes
   * nothing), rejects when the database is unreachable, full or locked.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}
