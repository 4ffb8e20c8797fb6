/**
 * Console session recording: policies (off unless set, per project or per server), the index of
 * recordings in the store, and the store port. The recordings themselves are files (see
 * recording-file.ts); the store holds where each is, its sealed data key and its digest chain.
 */

export type PolicyScope = 'project' | 'server';

/** What is recorded for a project's servers, or for one server (a server's policy wins over its project's). */
export interface RecordingPolicy {
  readonly scope: PolicyScope;
  /** The project's id, or the server's. */
  readonly scopeId: string;
  /** The project (for a server policy: the server's project). */
  readonly projectId: string;
  /** Sessions are recorded. */
  readonly enabled: boolean;
  /** Key events are recorded too (they hold typed passwords): off unless set. */
  readonly keystrokes: boolean;
  /** Recordings are deleted this many days after they started. */
  readonly retentionDays: number;
  /** Project policies only: the most bytes of recordings the project keeps (the oldest go first); null = no quota. */
  readonly quotaBytes: number | null;
  readonly updatedAt: number;
  /** Who set it (`cli:<os user>`, `user:<id>`). */
  readonly updatedBy: string | null;
}

/** One recorded session, as indexed in the store. */
export interface RecordingRecord {
  readonly id: string;
  readonly sessionId: string;
  readonly projectId: string;
  readonly serverId: string;
  readonly nodeId: string;
  /** File name under the recording directory. */
  readonly file: string;
  /** The recording's data key, sealed with the master key (AAD `recording:<id>`). */
  readonly sealedKey: string;
  readonly keystrokes: boolean;
  readonly startedAt: number;
  /** Null while recording (or when the node died mid-session). */
  readonly endedAt: number | null;
  readonly expiresAt: number;
  /** Bytes of the file and sealed chunks written so far, and the digest chain's last link (hex). */
  readonly bytes: number;
  readonly chunks: number;
  readonly digest: string;
  /** Duration covered by the chunks written (ms from start). */
  readonly durationMs: number;
}

export interface RecordingProgress {
  readonly bytes: number;
  readonly chunks: number;
  readonly digest: string;
  readonly durationMs: number;
  readonly endedAt?: number;
}

export interface RecordingFilter {
  readonly projectId?: string;
  readonly serverId?: string;
  readonly sessionId?: string;
  /** Recordings that expired before this time. */
  readonly expiredBefore?: number;
  /** Oldest first (default newest first). */
  readonly oldestFirst?: boolean;
  readonly limit?: number;
}

export interface RecordingStore {
  putRecordingPolicy(p: RecordingPolicy): Promise<void>;
  deleteRecordingPolicy(scope: PolicyScope, scopeId: string): Promise<boolean>;
  /** The policies that may apply to a server: its own and its project's. */
  recordingPoliciesFor(projectId: string, serverId: string): Promise<RecordingPolicy[]>;
  listRecordingPolicies(projectId?: string): Promise<RecordingPolicy[]>;
  insertRecording(r: RecordingRecord): Promise<void>;
  updateRecordingProgress(id: string, p: RecordingProgress): Promise<void>;
  getRecording(id: string): Promise<RecordingRecord | null>;
  listRecordings(f: RecordingFilter): Promise<RecordingRecord[]>;
  deleteRecording(id: string): Promise<boolean>;
  /** Bytes of recordings per project (projects with none are absent). */
  recordingBytesByProject(): Promise<Array<{ projectId: string; bytes: number }>>;
}
