/**
 * Versioned PostgreSQL schema migrations. Append only: a released migration never changes.
 *
 * The tables, columns and semantics are the SQLite adapter's (see ../sqlite/migrations.ts), with
 * PostgreSQL types: `bigint` for epoch-ms times (read back as strings, mapped to numbers by
 * ../row-mappers.ts), `bigserial` for increasing ids, and JSON kept as `text` (not `jsonb`) so that
 * what is read back is exactly what was written, as in SQLite.
 */
import { FEWER_INDEX_ENTRIES, type Migration } from '../migration.js';

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'identity, inventory, console tokens, audit',
    sql: `
CREATE TABLE domains (
  id text PRIMARY KEY, name text NOT NULL UNIQUE, created_at bigint NOT NULL);
CREATE TABLE projects (
  id text PRIMARY KEY, name text NOT NULL, domain_id text NOT NULL REFERENCES domains(id),
  created_at bigint NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE users (
  id text PRIMARY KEY, domain_id text NOT NULL REFERENCES domains(id), name text NOT NULL,
  password_hash text NOT NULL, actions text NOT NULL, created_at bigint NOT NULL, UNIQUE (domain_id, name));
CREATE TABLE access_keys (
  ak text PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), project_id text NOT NULL REFERENCES projects(id),
  sk_sealed text NOT NULL, actions text NOT NULL, created_at bigint NOT NULL,
  failed_attempts integer NOT NULL DEFAULT 0, locked_until bigint);
CREATE INDEX access_keys_user ON access_keys (user_id);
CREATE TABLE iam_tokens (
  hash text PRIMARY KEY, user_id text NOT NULL, project_id text NOT NULL,
  issued_at bigint NOT NULL, expires_at bigint NOT NULL);
CREATE INDEX iam_tokens_expires ON iam_tokens (expires_at);
CREATE TABLE servers (
  id text PRIMARY KEY, project_id text NOT NULL REFERENCES projects(id), name text NOT NULL,
  status text NOT NULL, availability_zone text NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL,
  console_host text NOT NULL, console_port integer NOT NULL, console_auth text NOT NULL,
  console_password_sealed text, console_revision integer NOT NULL DEFAULT 1);
CREATE INDEX servers_project ON servers (project_id, created_at);
CREATE TABLE console_tokens (
  hash text PRIMARY KEY, server_id text NOT NULL, project_id text NOT NULL, console_revision integer NOT NULL,
  issued_at bigint NOT NULL, expires_at bigint NOT NULL, consumed_at bigint, consumed_by text);
CREATE INDEX console_tokens_server ON console_tokens (server_id);
CREATE INDEX console_tokens_expires ON console_tokens (expires_at);
CREATE TABLE audit_events (
  id bigserial PRIMARY KEY, at bigint NOT NULL, kind text NOT NULL, node_id text NOT NULL,
  project_id text, server_id text, token_ref text, session_id text, detail text NOT NULL);
CREATE INDEX audit_events_server ON audit_events (server_id, id);
`,
  },
  {
    version: 2,
    name: 'live sessions and the change feed',
    sql: `
CREATE TABLE console_sessions (
  id text PRIMARY KEY, node_id text NOT NULL, server_id text NOT NULL, project_id text NOT NULL,
  token_ref text NOT NULL, client_address text NOT NULL, started_at bigint NOT NULL, heartbeat_at bigint NOT NULL);
CREATE INDEX console_sessions_server ON console_sessions (server_id);
CREATE INDEX console_sessions_node ON console_sessions (node_id);
CREATE TABLE change_events (
  id bigserial PRIMARY KEY, at bigint NOT NULL, kind text NOT NULL, server_id text, session_id text);
CREATE INDEX change_events_at ON change_events (at);
`,
  },
  {
    version: 3,
    name: 'master key checks',
    sql: `
CREATE TABLE master_key_checks (
  key_id text PRIMARY KEY, canary_sealed text NOT NULL, created_at bigint NOT NULL);
`,
  },
  {
    version: 4,
    name: 'signature failures per (AK, source address); audit actors',
    sql: `
CREATE TABLE signature_failures (
  ak text NOT NULL, address text NOT NULL, failures integer NOT NULL, locked_until bigint, expires_at bigint NOT NULL,
  PRIMARY KEY (ak, address));
CREATE INDEX signature_failures_expires ON signature_failures (expires_at);
ALTER TABLE access_keys DROP COLUMN failed_attempts;
ALTER TABLE access_keys DROP COLUMN locked_until;
ALTER TABLE audit_events ADD COLUMN actor_user_id text;
ALTER TABLE audit_events ADD COLUMN actor_credential text;
ALTER TABLE audit_events ADD COLUMN target text;
ALTER TABLE audit_events ADD COLUMN request_id text;
ALTER TABLE audit_events ADD COLUMN client_address text;
CREATE INDEX audit_events_target ON audit_events (target, id);
`,
  },
  {
    version: 5,
    name: 'session rows owned by a process; revoked console tokens kept with their reason',
    sql: `
ALTER TABLE console_sessions ADD COLUMN instance_id text NOT NULL DEFAULT '';
ALTER TABLE console_tokens ADD COLUMN revoked_at bigint;
ALTER TABLE console_tokens ADD COLUMN revoked_reason text;
`,
  },
  {
    version: 6,
    name: 'console target kinds (static, qemu-qmp, libvirt) and TLS to the hypervisor',
    sql: `
ALTER TABLE servers ADD COLUMN console_kind text NOT NULL DEFAULT 'static';
ALTER TABLE servers ADD COLUMN console_qmp text;
ALTER TABLE servers ADD COLUMN console_libvirt_uri text;
ALTER TABLE servers ADD COLUMN console_libvirt_domain text;
ALTER TABLE servers ADD COLUMN console_tls_name text;
`,
  },
  {
    version: 7,
    name: 'identity lifecycle: enabled users and administrators, key status and temporary keys, who issued a console token',
    sql: `
ALTER TABLE users ADD COLUMN enabled integer NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN admin integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN status text NOT NULL DEFAULT 'active';
ALTER TABLE access_keys ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN expires_at bigint;
ALTER TABLE access_keys ADD COLUMN security_token_hash text;
ALTER TABLE access_keys ADD COLUMN issued_by text;
CREATE INDEX access_keys_expires ON access_keys (expires_at);
CREATE INDEX iam_tokens_user ON iam_tokens (user_id);
ALTER TABLE console_tokens ADD COLUMN issued_by text;
ALTER TABLE console_tokens ADD COLUMN issued_by_user text;
CREATE INDEX console_tokens_issued_by ON console_tokens (issued_by);
CREATE INDEX console_tokens_issued_by_user ON console_tokens (issued_by_user);
ALTER TABLE change_events ADD COLUMN credential text;
`,
  },
  {
    version: 8,
    name: 'operator plane: audit search columns and indexes, who holds sessions, session traffic, change reasons',
    sql: `
ALTER TABLE audit_events ADD COLUMN outcome text;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_project ON audit_events (project_id, id);
CREATE INDEX audit_events_actor_user ON audit_events (actor_user_id, id);
CREATE INDEX audit_events_actor_credential ON audit_events (actor_credential, id);
CREATE INDEX audit_events_client_address ON audit_events (client_address, id);
ALTER TABLE console_sessions ADD COLUMN user_id text;
ALTER TABLE console_sessions ADD COLUMN credential text;
ALTER TABLE console_sessions ADD COLUMN bytes_to_client bigint NOT NULL DEFAULT 0;
ALTER TABLE console_sessions ADD COLUMN bytes_to_backend bigint NOT NULL DEFAULT 0;
ALTER TABLE change_events ADD COLUMN actor text;
ALTER TABLE change_events ADD COLUMN reason text;
CREATE INDEX servers_project_az ON servers (project_id, availability_zone);
`,
  },
  {
    version: 9,
    name: 'session recordings: policies per project or server, and the index of recording files with their sealed keys and digest chains',
    sql: `
CREATE TABLE recording_policies (
  scope text NOT NULL,
  scope_id text NOT NULL,
  project_id text NOT NULL,
  enabled integer NOT NULL,
  keystrokes integer NOT NULL,
  retention_days integer NOT NULL,
  quota_bytes bigint,
  updated_at bigint NOT NULL,
  updated_by text,
  PRIMARY KEY (scope, scope_id)
);
CREATE INDEX recording_policies_project ON recording_policies (project_id);
CREATE TABLE recordings (
  id text PRIMARY KEY,
  session_id text NOT NULL,
  project_id text NOT NULL,
  server_id text NOT NULL,
  node_id text NOT NULL,
  file text NOT NULL,
  sealed_key text NOT NULL,
  keystrokes integer NOT NULL,
  started_at bigint NOT NULL,
  ended_at bigint,
  expires_at bigint NOT NULL,
  bytes bigint NOT NULL,
  chunks integer NOT NULL,
  digest text NOT NULL,
  duration_ms bigint NOT NULL
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
ALTER TABLE servers ADD COLUMN console_serial text;
ALTER TABLE console_tokens ADD COLUMN kind text NOT NULL DEFAULT 'vnc';
CREATE TABLE serial_output (
  server_id text PRIMARY KEY, holder text NOT NULL, held_until bigint NOT NULL,
  end_offset bigint NOT NULL, data bytea NOT NULL, updated_at bigint NOT NULL);
`,
  },
  {
    version: 11,
    name: 'audit records of a domain without a project (identity lifecycle): the domain they belong to',
    sql: `
ALTER TABLE audit_events ADD COLUMN domain_id text;
CREATE INDEX audit_events_domain ON audit_events (domain_id, id);
`,
  },
  // The same SQL in both dialects.
  FEWER_INDEX_ENTRIES,
];
