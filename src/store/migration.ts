/** A versioned schema migration, shared by the SQL adapters. Append only: a released migration never changes. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** One or more statements, run in one transaction. */
  readonly sql: string;
}

/** The newest version a list of migrations knows (0 for none). */
export function newestMigration(migrations: readonly Migration[]): number {
  return migrations.reduce((a, m) => Math.max(a, m.version), 0);
}

/** The message of the refusal to open a database migrated by a newer program. */
export function schemaTooNewMessage(found: number, known: number): string {
  return `database schema version ${found} is newer than this program knows (${known}); upgrade ecs-console`;
}

/**
 * Migration 12, the same in SQLite and PostgreSQL. Every row written costs an entry in each index
 * of its table (a page written at the commit): a console URL's token and audit rows are the API's
 * commit (docs/benchmarks.md).
 */
export const FEWER_INDEX_ENTRIES: Migration = {
  version: 12,
  name: 'fewer index entries per console URL: one index of who issued a console token (user, then credential), audit target and domain indexed only where set',
  sql: `
DROP INDEX console_tokens_issued_by;
DROP INDEX console_tokens_issued_by_user;
CREATE INDEX console_tokens_issuer ON console_tokens (issued_by_user, issued_by);
DROP INDEX audit_events_target;
CREATE INDEX audit_events_target ON audit_events (target, id) WHERE target IS NOT NULL;
DROP INDEX audit_events_domain;
CREATE INDEX audit_events_domain ON audit_events (domain_id, id) WHERE domain_id IS NOT NULL;
`,
};
