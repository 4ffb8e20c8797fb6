/** PostgreSQL implementation of the key check port (see secrets/key-check.ts). */
import type { KeyCheck, KeyCheckStore, Reseal, SealedSecret } from '../../secrets/key-check.js';
import { rowToKeyCheck, rowToSealedSecret, SEALED_SECRETS_PAGE_SQL, SEALED_SECRETS_SQL, sealedSecretRow } from '../row-mappers.js';
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
  async addKeyCheck(c: KeyCheck): Promise<void> {
    await this.db.count('INSERT INTO master_key_checks (key_id, canary_sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING',
      [c.keyId, c.canary, c.createdAt]);
  }
  async removeKeyCheck(keyId: string): Promise<boolean> {
    return (await this.db.count('DELETE FROM master_key_checks WHERE key_id = $1', [keyId])) > 0;
  }
  async sealedSecretsAfter(afterAad: string | null, limit: number): Promise<SealedSecret[]> {
    return (await this.db.rows(SEALED_SECRETS_PAGE_SQL.postgres, [afterAad ?? '', limit])).map(rowToSealedSecret);
  }
  replaceSealedSecrets(changes: readonly Reseal[]): Promise<number> {
    // One transaction; each row written only if it still holds what was re-sealed (a node that
    // changed it meanwhile holds the row lock, and READ COMMITTED re-checks the condition after it).
    return this.db.transaction(async (tx) => {
      let n = 0;
      for (const c of changes) {
        const r = sealedSecretRow(c.aad);
        n += await tx.count(`UPDATE ${r.table} SET ${r.column} = $1 WHERE ${r.key} = $2 AND ${r.column} = $3`, [c.to, r.id, c.from]);
      }
      return n;
    });
  }
}
