/** PostgreSQL implementation of the key check port (see secrets/key-check.ts). */
import type { KeyCheck, KeyCheckStore, SealedSecret } from '../../secrets/key-check.js';
import { rowToKeyCheck, rowToSealedSecret, SEALED_SECRETS_SQL } from '../row-mappers.js';
import { ADVISORY_LOCKS, type PostgresDatabase } from './postgres-database.js';

export class PostgresKeyCheckStore implements KeyCheckStore {
  constructor(private readonly db: PostgresDatabase) {}

  async listKeyChecks(): Promise<KeyCheck[]> {
    return (await this.db.rows('SELECT * FROM master_key_checks ORDER BY created_at, key_id COLLATE "C"')).map(rowToKeyCheck);
  }
  async initKeyCheck(c: KeyCheck): Promise<KeyCheck[]> {
    // NOTE: under READ COMMITTED two nodes could both see an empty table and both insert (their
    // key ids differ): the advisory lock makes "insert when empty" one at a time.
    await this.db.transaction(async (tx) => {
      await tx.one('SELECT pg_advisory_xact_lock($1, $2)', [...ADVISORY_LOCKS.keyCheck]);
      await tx.count(
        `INSERT INTO master_key_checks (key_id, canary_sealed, created_at)
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM master_key_checks)`,
        [c.keyId, c.canary, c.createdAt],
      );
    });
    return this.listKeyChecks();
  }
  async listSealedSecrets(limit: number): Promise<SealedSecret[]> {
    return (await this.db.rows(`${SEALED_SECRETS_SQL} $1`, [limit])).map(rowToSealedSecret);
  }
}
