/**
 * The store's key check: which master key the store was initialised with. A process whose key
 * does not open it refuses to start, instead of starting "healthy" and answering 500 for every
 * stored secret while sealing new ones with a key that opens none of the old.
 *
 * A check is a key's id (SecretBox.keyId) and a canary sealed with that key; the canary proves
 * the key opens what it seals, the id names the key in messages. The first process that
 * initialises a store records its key's check. A store created before checks existed gets one
 * from the first key that opens one of its sealed secrets, or from the current key when it holds
 * none. A store may hold several checks (a key rotation adds the new key's before it re-seals,
 * and removes the old key's once nothing is sealed with it: key-rotation.ts).
 *
 * A process's sealing key (the first of its ring) must have a check: what it seals then opens
 * wherever the store's keys are held.
 */
import { MasterKeyError } from '../errors.js';
import type { SecretBox } from './secret-box.js';

export interface KeyCheck {
  readonly keyId: string;
  /** A fixed text sealed with the key, bound to its id. */
  readonly canary: string;
  readonly createdAt: number;
}

/** A secret sealed at rest, with the associated data that binds it to its row (`sk:<ak>`, `vnc:<server id>`). */
export interface SealedSecret {
  readonly aad: string;
  readonly sealed: string;
}

/** A re-sealed secret: written only where the row still holds `from` (compare and swap). */
export interface Reseal {
  readonly aad: string;
  readonly from: string;
  readonly to: string;
}

/** The port the adapters implement. */
export interface KeyCheckStore {
  listKeyChecks(): Promise<KeyCheck[]>;
  /**
   * Records `check` if the store holds no check yet, atomically (two processes initialising a
   * store at once with different keys: exactly one is recorded). Returns the checks held after.
   */
  initKeyCheck(check: KeyCheck): Promise<KeyCheck[]>;
  /** Up to `limit` of the sealed secrets the store holds, oldest first. */
  listSealedSecrets(limit: number): Promise<SealedSecret[]>;
  /** Records `check` beside those held (a key rotation's new key); nothing when its key id is held already. */
  addKeyCheck(check: KeyCheck): Promise<void>;
  /** Removes the check of `keyId`; whether there was one. */
  removeKeyCheck(keyId: string): Promise<boolean>;
  /** Up to `limit` sealed secrets whose associated data sorts after `afterAad` (byte order), in that order: paging over all of them. */
  sealedSecretsAfter(afterAad: string | null, limit: number): Promise<SealedSecret[]>;
  /**
   * Writes each re-sealed secret where its row still holds `from`, all in one transaction (all or
   * none are written). Returns how many rows changed: a row changed meanwhile (a new password, a
   * deleted key) is left as it is.
   */
  replaceSealedSecrets(changes: readonly Reseal[]): Promise<number>;
}

const CANARY = 'ecs-console master key check';
const canaryAad = (keyId: string): string => `key-check:${keyId}`;

/** How many stored secrets a store without a check is probed with. */
const PROBE = 1000;

/** The check of `box`'s key. */
export function keyCheckOf(box: SecretBox, now: number): KeyCheck {
  return { keyId: box.keyId, canary: box.seal(CANARY, canaryAad(box.keyId)), createdAt: now };
}

function opens(box: SecretBox, sealed: string, aad: string): boolean {
  try {
    box.open(sealed, aad);
    return true;
  } catch {
    return false;
  }
}

/** Whether `box`'s sealing key is the key of one of `checks`. */
export function accepts(box: SecretBox, checks: readonly KeyCheck[]): boolean {
  return checks.some((c) => c.keyId === box.keyId && opens(box, c.canary, canaryAad(c.keyId)));
}

/** Whether any key of `box`'s ring is the key of one of `checks`. */
export function holdsAny(box: SecretBox, checks: readonly KeyCheck[]): boolean {
  return checks.some((c) => box.keyIds.includes(c.keyId) && opens(box, c.canary, canaryAad(c.keyId)));
}

/** How a store was initialised, for messages; null when it holds no check and no secret. */
export async function storedKeys(store: KeyCheckStore): Promise<string | null> {
  const checks = await store.listKeyChecks();
  if (checks.length > 0) return `key id ${checks.map((c) => c.keyId).join(', ')}`;
  return (await store.listSealedSecrets(1)).length > 0 ? 'secrets sealed with a master key (no key check recorded yet)' : null;
}

/**
 * Whether `box` opens a store without recording anything (a read-only store, a backup): it holds
 * one of the store's checks, or, for a store without checks, opens one of its sealed secrets
 * (a store with neither is opened by any key).
 */
export async function keyOpens(store: KeyCheckStore, box: SecretBox): Promise<boolean> {
  const checks = await store.listKeyChecks();
  if (checks.length > 0) return holdsAny(box, checks);
  const secrets = await store.listSealedSecrets(PROBE);
  return secrets.length === 0 || secrets.some((s) => opens(box, s.sealed, s.aad));
}

export type KeyCheckOutcome =
  /** The store holds this key's check. */
  | { readonly kind: 'verified'; readonly keyId: string }
  /** This key's check was recorded now: it opened a stored secret, or the store held none. */
  | { readonly kind: 'recorded'; readonly keyId: string; readonly from: 'stored-secret' | 'empty-store'; readonly secretsProbed: number; readonly secretsUnreadable: number };

/** What messages call the key and the store (never the key itself, nor a password in a URL). */
export interface KeyCheckContext {
  readonly key: string;
  readonly store: string;
}

/**
 * Verifies that `box` holds the store's master key, recording the key's check when the store
 * has none yet (see the module comment). Throws MasterKeyError naming the key and the store.
 */
export async function checkMasterKey(store: KeyCheckStore, box: SecretBox, now: number, where: KeyCheckContext): Promise<KeyCheckOutcome> {
  const ring = box.keyIds.length > 1 ? `key ids ${box.keyIds.join(', ')}` : `key id ${box.keyId}`;
  const refuse = (ids: readonly KeyCheck[]): MasterKeyError => holdsAny(box, ids)
    ? new MasterKeyError(
      `${where.key} starts with key id ${box.keyId}, which seals new secrets but is not a key of the store ${where.store} (its keys: ` +
      `${ids.map((c) => c.keyId).join(', ')}): record it with \`ecs-console master-key add\`, or put one of the store's keys first`,
    )
    : new MasterKeyError(
      `${where.key} (${ring}) is not the master key of the store ${where.store}, which was initialised with key id ` +
      `${ids.map((c) => c.keyId).join(', ')}: restore that key (the key file, or masterKey / ECS_CONSOLE_MASTER_KEY) and start again`,
    );
  const checks = await store.listKeyChecks();
  if (checks.length > 0) {
    // NOTE: this is the guard that keeps a node with a wrong or regenerated key from starting.
    if (!accepts(box, checks)) throw refuse(checks);
    return { kind: 'verified', keyId: box.keyId };
  }
  const secrets = await store.listSealedSecrets(PROBE);
  const readable = secrets.filter((s) => opens(box, s.sealed, s.aad)).length;
  if (secrets.length > 0 && readable === 0) {
    throw new MasterKeyError(
      `${where.key} (key id ${box.keyId}) opens none of the ${secrets.length} secret(s) checked in the store ${where.store}: ` +
      'they were sealed with another master key; restore that key and start again',
    );
  }
  const held = await store.initKeyCheck(keyCheckOf(box, now));
  // Another process may have initialised the store with its own key meanwhile.
  if (!accepts(box, held)) throw refuse(held);
  return {
    kind: 'recorded', keyId: box.keyId, from: secrets.length > 0 ? 'stored-secret' : 'empty-store',
    secretsProbed: secrets.length, secretsUnreadable: secrets.length - readable,
  };
}
