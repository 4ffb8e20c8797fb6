/**
 * Rotating the master key (docs/deploy.md, "Rotating the master key"). The new key is the first
 * of the ring (it seals); the old keys follow (they open). Rotation:
 *
 * 1. records the new key's check, when the store lacks it (the ring proves it holds a key of
 *    the store);
 * 2. re-seals every secret not sealed with the new key, a batch per transaction, each row written
 *    only where it still holds what was read (compare and swap), and repeats until a pass finds
 *    none left (a node still sealing with an old key adds some meanwhile);
 * 3. removes the old keys' checks: from then on a node holding only an old key is refused.
 *
 * Crash-safe: every row holds a secret sealed with the old key or with the new one, both in the
 * ring, at every moment; a batch is committed whole or not at all. Run it again to finish.
 */
import { MasterKeyError } from '../errors.js';
import { holdsAny, keyCheckOf, type KeyCheckStore, type Reseal } from './key-check.js';
import type { SecretBox } from './secret-box.js';

export interface RotationProgress {
  /** Which pass over the secrets (1, 2, ...). */
  readonly pass: number;
  /** Secrets looked at in this pass so far. */
  readonly scanned: number;
  /** Secrets re-sealed with the new key, all passes. */
  readonly resealed: number;
}

export interface RotationResult {
  readonly keyId: string;
  /** Whether the new key's check was recorded by this run. */
  readonly checkAdded: boolean;
  readonly resealed: number;
  readonly passes: number;
  /** Key ids whose checks were removed. */
  readonly retired: readonly string[];
  /** Secrets sealed with the new key, counted in the last pass. */
  readonly secrets: number;
}

export interface RotationOptions {
  /** Secrets per batch (and transaction). */
  readonly batch: number;
  /** Called after each committed batch. */
  readonly onBatch?: (p: RotationProgress) => void;
  /** Passes before giving up while secrets sealed with another key keep appearing. */
  readonly maxPasses?: number;
}

/**
 * Re-seals every secret of `store` with `box`'s sealing key and retires the store's other keys.
 * Throws MasterKeyError when the ring holds no key of the store, or when a secret opens with no
 * key of the ring (nothing is retired then).
 */
export async function rotateMasterKey(store: KeyCheckStore, box: SecretBox, now: number, opts: RotationOptions): Promise<RotationResult> {
  const checks = await store.listKeyChecks();
  if (!holdsAny(box, checks)) {
    throw new MasterKeyError(`the key ring (key ids ${box.keyIds.join(', ')}) holds none of the store's keys (${checks.map((c) => c.keyId).join(', ') || 'none recorded'}): put the current key in the ring, after the new one`);
  }
  let checkAdded = false;
  if (!checks.some((c) => c.keyId === box.keyId)) {
    await store.addKeyCheck(keyCheckOf(box, now));
    checkAdded = true;
  }
  const maxPasses = opts.maxPasses ?? 10;
  let resealed = 0;
  for (let pass = 1; ; pass++) {
    let scanned = 0;
    /** Secrets this pass found sealed with an old key (written or, changed meanwhile, left for the next pass). */
    let old = 0;
    let current = 0;
    const unreadable: string[] = [];
    for (let after: string | null = null; ;) {
      const page = await store.sealedSecretsAfter(after, opts.batch);
      if (page.length === 0) break;
      after = page[page.length - 1]!.aad;
      scanned += page.length;
      const changes: Reseal[] = [];
      for (const s of page) {
        const opened = box.openWithId(s.sealed, s.aad);
        if (!opened) unreadable.push(s.aad);
        else if (opened.keyId === box.keyId) current++;
        else changes.push({ aad: s.aad, from: s.sealed, to: box.seal(opened.plaintext, s.aad) });
      }
      if (changes.length === 0) continue;
      old += changes.length;
      const n = await store.replaceSealedSecrets(changes);
      resealed += n;
      current += n;
      opts.onBatch?.({ pass, scanned, resealed });
    }
    if (unreadable.length > 0) {
      throw new MasterKeyError(
        `${unreadable.length} stored secret(s) open with no key of the ring (key ids ${box.keyIds.join(', ')}), e.g. ${unreadable.slice(0, 3).join(', ')}: ` +
        'they stay as they are and no key was retired; add the key they were sealed with to the ring and run the rotation again',
      );
    }
    // A pass that found nothing to re-seal saw every secret sealed with the new key.
    if (old === 0) {
      const retired: string[] = [];
      for (const c of await store.listKeyChecks()) {
        if (c.keyId !== box.keyId && (await store.removeKeyCheck(c.keyId))) retired.push(c.keyId);
      }
      return { keyId: box.keyId, checkAdded, resealed, passes: pass, retired, secrets: current };
    }
    if (pass >= maxPasses) {
      throw new MasterKeyError(
        `secrets sealed with an old key kept appearing for ${pass} passes: some node still seals with an old key. Put the new key first in every node's ring, ` +
        'reload them (SIGHUP), and run the rotation again; nothing was retired',
      );
    }
  }
}
