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
