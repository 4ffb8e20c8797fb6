/** SQLite implementation of the key check port (see secrets/key-check.ts). */
import type { KeyCheck, KeyCheckStore, Reseal, SealedSecret } from '../../secrets/key-check.js';
import { rowToKeyCheck, rowToSealedSecret, SEALED_SECRETS_PAGE_SQL, SEALED_SECRETS_SQL, sealedSecretRow, type Row } from '../row-mappers.js';
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
  async addKeyCheck(c: KeyCheck): Promise<void> {
    await sqlite(() => prep(this.db, 'INSERT INTO master_key_checks (key_id, canary_sealed, created_at) VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING')
      .run(c.keyId, c.canary, c.createdAt));
  }
  removeKeyCheck(keyId: string): Promise<boolean> {
    return sqlite(() => prep(this.db, 'DELETE FROM master_key_checks WHERE key_id = ?').run(keyId).changes > 0);
  }
  sealedSecretsAfter(afterAad: string | null, limit: number): Promise<SealedSecret[]> {
    return sqlite(() => (prep(this.db, SEALED_SECRETS_PAGE_SQL.sqlite).all(afterAad ?? '', limit) as Row[]).map(rowToSealedSecret));
  }
  replaceSealedSecrets(changes: readonly Reseal[]): Promise<number> {
    // One transaction; each row written only if it still holds what was re-sealed.
    return sqlite(() => this.db.transaction(() => changes.reduce((n, c) => {
      const r = sealedSecretRow(c.aad);
      return n + prep(this.db, `UPDATE ${r.table} SET ${r.column} = ? WHERE ${r.key} = ? AND ${r.column} = ?`).run(c.to, r.id, c.from).changes;
    }, 0)).immediate());
  }
}
