/** SQLite implementation of the key check port (see secrets/key-check.ts). */
import type { KeyCheck, KeyCheckStore, SealedSecret } from '../../secrets/key-check.js';
import { rowToKeyCheck, rowToSealedSecret, SEALED_SECRETS_SQL, type Row } from '../row-mappers.js';
import { prep, sqlite, type Db } from './sqlite-database.js';

export class SqliteKeyCheckStore implements KeyCheckStore {
  constructor(private readonly db: Db) {}

  listKeyChecks(): Promise<KeyCheck[]> {
    return sqlite(() => (prep(this.db, 'SELECT * FROM master_key_checks ORDER BY created_at, key_id').all() as Row[]).map(rowToKeyCheck));
  }
  async initKeyCheck(c: KeyCheck): Promise<KeyCheck[]> {
    // One statement: SQLite's write lock makes "insert when empty" atomic across processes.
    await sqlite(() => prep(this.db,
      `INSERT INTO master_key_checks (key_id, canary_sealed, created_at)
       SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM master_key_checks)`,
    ).run(c.keyId, c.canary, c.createdAt));
    return this.listKeyChecks();
  }
  listSealedSecrets(limit: number): Promise<SealedSecret[]> {
    return sqlite(() => (prep(this.db, `${SEALED_SECRETS_SQL} ?`).all(limit) as Row[]).map(rowToSealedSecret));
  }
}
