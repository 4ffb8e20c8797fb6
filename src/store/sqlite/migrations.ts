/** Versioned SQLite schema migrations. Append only: a released migration never changes. */
import { FEWER_INDEX_ENTRIES, type Migration } from '../migration.js';

export type { Migration };

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'identity, inventory, console tokens, audit',
    sql: `
CREATE TABLE domains (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE projects (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL REFERENCES domains(id),
  created_at INTEGER NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE users (
  id TEXT PRIMARY KEY, domain_id TEXT NOT NULL REFERENCES domains(id), name TEXT NOT NULL,
  password_hash TEXT NOT NULL, actions TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE access_keys (
  ak TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), project_id TEXT NOT NULL REFERENCES projects(id),
  sk_sealed TEXT NOT NULL, actions TEXT NOT NULL, created_at INTEGER NOT NULL,
  failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until INTEGER);
CREATE INDEX access_keys_user ON access_keys (user_id);
CREATE TABLE iam_tokens (
  hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, project_id TEXT NOT NULL,
  issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX iam_tokens_expires ON iam_tokens (expires_at);
CREATE TABLE servers (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id), name TEXT NOT NULL,
  status TEXT NOT NULL, availability_zone TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  console_host TEXT NOT NULL, console_port INTEGER NOT NULL, console_auth TEXT NOT NULL,
  console_password_sealed TEXT, console_revision INTEGER NOT NULL DEFAULT 1);
CREATE INDEX servers_project ON servers (project_id, created_at);
CREATE TABLE console_tokens (
  hash TEXT PRIMARY KEY, server_id TEXT NOT NULL, project_id TEXT NOT NULL, console_revision INTEGER NOT NULL,
  issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, consumed_at INTEGER, consumed_by TEXT);
CREATE INDEX console_tokens_server ON console_tokens (server_id);
CREATE INDEX console_tokens_expires ON console_tokens (expires_at);
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL, node_id TEXT NOT NULL,
  project_id TEXT, server_id TEXT, token_ref TEXT, session_id TEXT, detail TEXT NOT NULL);
CREATE INDEX audit_events_server ON audit_events (server_id, id);
`,
  },
  {
    version: 2,
    name: 'live sessions and the change feed',
    sql: `
CREATE TABLE console_sessions (
  id TEXT PRIMARY KEY, node_id TEXT NOT NULL, server_id TEXT NOT NULL, project_id TEXT NOT NULL,
  token_ref TEXT NOT NULL, client_address TEXT NOT NULL, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL);
CREATE INDEX console_sessions_server ON console_sessions (server_id);
CREATE INDEX console_sessions_node ON console_sessions (node_id);
CREATE TABLE change_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL, server_id TEXT, session_id TEXT);
CREATE INDEX change_events_at ON change_events (at);
`,
  },
  {
    version: 3,
    name: 'master key checks',
    sql: `
CREATE TABLE master_key_checks (
  key_id TEXT PRIMARY KEY, canary_sealed TEXT NOT NULL, created_at INTEGER NOT NULL);
`,
  },
  {
    version: 4,
    name: 'signature failures per (AK, source address); audit actors',
    sql: `
CREATE TABLE signature_failures (
  ak TEXT NOT NULL, address TEXT NOT NULL, failures INTEGER NOT NULL, locked_until INTEGER, expires_at INTEGER NOT NULL,
  PRIMARY KEY (ak, address));
CREATE INDEX signature_failures_expires ON signature_failures (expires_at);
ALTER TABLE access_keys DROP COLUMN failed_attempts;
ALTER TABLE access_keys DROP COLUMN locked_until;
ALTER TABLE audit_events ADD COLUMN actor_user_id TEXT;
ALTER TABLE audit_events ADD COLUMN actor_credential TEXT;
ALTER TABLE audit_events ADD COLUMN target TEXT;
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
ALTER TABLE audit_events ADD COLUMN client_address TEXT;
CREATE INDEX audit_events_target ON audit_events (target, id);
`,
  },
  {
    version: 5,
    name: 'session rows owned by a process; revoked console tokens kept with their reason',
    sql: `
ALTER TABLE console_sessions ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
ALTER TABLE console_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE console_tokens ADD COLUMN revoked_reason TEXT;
`,
  },
  {
    version: 6,
    name: 'console target kinds (static, qemu-qmp, libvirt) and TLS to the hypervisor',
    sql: `
ALTER TABLE servers ADD COLUMN console_kind TEXT NOT NULL DEFAULT 'static';
ALTER TABLE servers ADD COLUMN console_qmp TEXT;
ALTER TABLE servers ADD COLUMN console_libvirt_uri TEXT;
ALTER TABLE servers ADD COLUMN console_libvirt_domain TEXT;
ALTER TABLE servers ADD COLUMN console_tls_name TEXT;
`,
  },
  {
    version: 7,
    name: 'identity lifecycle: enabled users and administrators, key status and temporary keys, who issued a console token',
    sql: `
ALTER TABLE users ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE access_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE access_keys ADD COLUMN security_token_hash TEXT;
ALTER TABLE access_keys ADD COLUMN issued_by TEXT;
CREATE INDEX access_keys_expires ON access_keys (expires_at);
CREATE INDEX iam_tokens_user ON iam_tokens (user_id);
ALTER TABLE console_tokens ADD COLUMN issued_by TEXT;
ALTER TABLE console_tokens ADD COLUMN issued_by_user TEXT;
CREATE INDEX console_tokens_issued_by ON console_tokens (issued_by);
CREATE INDEX console_tokens_issued_by_user ON console_tokens (issued_by_user);
ALTER TABLE change_events ADD COLUMN credential TEXT;
`,
  },
  {
    version: 8,
    name: 'operator plane: audit search columns and indexes, who holds sessions, session traffic, change reasons',
    sql: `
ALTER TABLE audit_events ADD COLUMN outcome TEXT;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_project ON audit_events (project_id, id);
CREATE INDEX audit_events_actor_user ON audit_events (actor_user_id, id);
CREATE INDEX audit_events_actor_credential ON audit_events (actor_credential, id);
CREATE INDEX audit_events_client_address ON audit_events (client_address, id);
ALTER TABLE console_sessions ADD COLUMN user_id TEXT;
ALTER TABLE console_sessions ADD COLUMN credential TEXT;
ALTER TABLE console_sessions ADD COLUMN bytes_to_client INTEGER NOT NULL DEFAULT 0;
ALTER TABLE console_sessions ADD COLUMN bytes_to_backend INTEGER NOT NULL DEFAULT 0;
ALTER TABLE change_events ADD COLUMN actor TEXT;
ALTER TABLE change_events ADD COLUMN reason TEXT;
CREATE INDEX servers_project_az ON servers (project_id, availability_zone);
`,
  },
  {
    version: 9,
    name: 'session recordings: policies per project or server, and the index of recording files with their sealed keys and digest chains',
    sql: `
CREATE TABLE recording_policies (
  scope TEXT NOT NULL,
  scope_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  keystrokes INTEGER NOT NULL,
  retention_days INTEGER NOT NULL,
  quota_bytes INTEGER,
  updated_at INTEGER NOT NULL,
  updated_by TEXT,
  PRIMARY KEY (scope, scope_id)
);
CREATE INDEX recording_policies_project ON recording_policies (project_id);
CREATE TABLE recordings (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  server_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  file TEXT NOT NULL,
  sealed_key TEXT NOT NULL,
  keystrokes INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  expires_at INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  chunks INTEGER NOT NULL,
  digest TEXT NOT NULL,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX recordings_project ON recordings (project_id, started_at);
CREATE INDEX recordings_server ON recordings (server_id, started_at);
CREATE INDEX recordings_session ON recordings (session_id);
CREATE INDEX recordings_expires ON recordings (expires_at);
`,
  },
  {
    version: 10,
    name: 'serial consoles: serial port of a target, token kinds, serial output and the node holding each port',
    sql: `
ALTER TABLE servers ADD COLUMN console_serial TEXT;
ALTER TABLE console_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'vnc';
CREATE TABLE serial_output (
  server_id TEXT PRIMARY KEY, holder TEXT NOT NULL, held_until INTEGER NOT NULL,
  end_offset INTEGER NOT NULL, data BLOB NOT NULL, updated_at INTEGER NOT NULL);
`,
  },
  {
    version: 11,
    name: 'audit records of a domain without a project (identity lifecycle): the domain they belong to',
    sql: `
ALTER TABLE audit_events ADD COLUMN domain_id TEXT;
CREATE INDEX audit_events_domain ON audit_events (domain_id, id);
`,
  },
  // The same SQL in both dialects.
  FEWER_INDEX_ENTRIES,
];
