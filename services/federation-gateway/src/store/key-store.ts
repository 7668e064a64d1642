import {
  AeadLabel,
  bytesEqual,
  KdfLabel,
  KeyEncryptionError,
  KeyEncryptionKeys,
  SigningKey,
  signatureKeyId,
  toHex,
  VerifyingKey,
} from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { and, eq, gt, lt, ne, sql } from "drizzle-orm";
import { type KeyScheduleConfig, newKeyValidity, type OwnKey, rotationDue } from "../domain/key-schedule.js";
import { ownKeys, peerKeys } from "./schema.js";

/** An own key with its private half. */
export interface OwnSigningKey extends OwnKey {
  signingKey: SigningKey;
}

/** Serialises key creation across replicas (transaction-scoped advisory lock). */
const KEYS_LOCK = 0x66656467_6b657973n; // "fedgkeys"

/** A pinned key stays valid until an operator replaces it. */
const PINNED_VALIDITY_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * The gateway's key-encryption keys (FEDERATION_KEY_ENCRYPTION_KEY and `_PREVIOUS`): every seed in
 * `fed_own_keys` is sealed under them, bound to its row's key id.
 */
export function federationKeyEncryption(current: string, previous?: string | undefined): KeyEncryptionKeys {
  return new KeyEncryptionKeys(
    {
      aeadLabel: AeadLabel.FederationSigningKeyAtRest,
      kekIdLabel: KdfLabel.FederationKeyEncryptionKeyId,
      variable: "FEDERATION_KEY_ENCRYPTION_KEY",
    },
    current,
    previous,
  );
}

function toOwnKey(row: typeof ownKeys.$inferSelect, encryption: KeyEncryptionKeys): OwnSigningKey {
  const what = `the federation signing key ${toHex(row.keyId).slice(0, 16)}…`;
  const signingKey = SigningKey.fromSeed(
    encryption.open({ bytes: row.seed, kekId: row.seedKekId }, row.keyId, what),
  );
  // A seed that opens but does not match its row (e.g. a plaintext row tampered with) would sign
  // with a key no peer knows: refuse to start instead.
  if (!bytesEqual(signingKey.publicKey, row.publicKey))
    throw new KeyEncryptionError(`${what} does not belong to its public key`);
  return {
    keyId: row.keyId,
    publicKey: row.publicKey,
    notBefore: row.notBefore,
    notAfter: row.notAfter,
    signingKey,
  };
}

/**
 * Every own key row (including expired ones, which are pruned by {@link ensureOwnKeys}), opened
 * with `encryption`; KeyEncryptionError when a seed does not open with the configured keys.
 */
export async function loadOwnKeys(db: Database, encryption: KeyEncryptionKeys): Promise<OwnSigningKey[]> {
  return (await db.select().from(ownKeys)).map((row) => toOwnKey(row, encryption));
}

/** The columns storing `seed` of key `keyId`, sealed under the current key-encryption key. */
function sealedSeed(encryption: KeyEncryptionKeys, seed: Uint8Array, keyId: Uint8Array) {
  const { bytes, kekId } = encryption.seal(seed, keyId);
  return { seed: bytes, seedKekId: kekId };
}

export interface EnsureOwnKeysOptions extends KeyScheduleConfig {
  now: number;
  /** Seals the seeds stored in the database (FEDERATION_KEY_ENCRYPTION_KEY). */
  encryption: KeyEncryptionKeys;
  /** An operator-provided seed (FEDERATION_SIGNING_KEY): pinned as the active key, no automatic rotation. */
  pinnedSeed?: Uint8Array | undefined;
}

/**
 * Makes sure a valid signing key exists: creates the first key on first start, rotates when the
 * active key is older than the rotation interval, or installs the operator's pinned key (every
 * other key then expires after the overlap). Seeds stored in plaintext (by versions before
 * encryption) or under the previous key-encryption key are resealed under the current one.
 * Replicas serialise on an advisory lock, so only one of them creates a key. Returns all keys.
 */
export async function ensureOwnKeys(db: Database, options: EnsureOwnKeysOptions): Promise<OwnSigningKey[]> {
  const { now, encryption } = options;
  await transaction(db, async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${KEYS_LOCK})`);
    await tx.delete(ownKeys).where(lt(ownKeys.notAfter, new Date(now - options.overlapMs)));
    const rows = await tx.select().from(ownKeys);
    const keys = rows.map((row) => toOwnKey(row, encryption));
    for (const [i, row] of rows.entries()) {
      if (encryption.isCurrent({ bytes: row.seed, kekId: row.seedKekId })) continue;
      const seed = keys[i]?.signingKey.exportSeed();
      if (!seed) continue;
      await tx
        .update(ownKeys)
        .set(sealedSeed(encryption, seed, row.keyId))
        .where(eq(ownKeys.keyId, row.keyId));
    }
    if (options.pinnedSeed !== undefined) {
      const pinned = SigningKey.fromSeed(options.pinnedSeed);
      const keyId = signatureKeyId(pinned.verifyingKey);
      if (!keys.some((k) => Buffer.from(k.keyId).equals(keyId))) {
        await tx.insert(ownKeys).values({
          keyId,
          publicKey: pinned.publicKey,
          ...sealedSeed(encryption, options.pinnedSeed, keyId),
          notBefore: new Date(now),
          notAfter: new Date(now + PINNED_VALIDITY_MS),
        });
        // The previous keys stay valid for the overlap only.
        await tx
          .update(ownKeys)
          .set({ notAfter: new Date(now + options.overlapMs) })
          .where(and(ne(ownKeys.keyId, keyId), gt(ownKeys.notAfter, new Date(now + options.overlapMs))));
      }
      return;
    }
    if (rotationDue(keys, now, options)) {
      const key = SigningKey.generate();
      const keyId = signatureKeyId(key.verifyingKey);
      await tx.insert(ownKeys).values({
        keyId,
        publicKey: key.publicKey,
        ...sealedSeed(encryption, key.exportSeed(), keyId),
        ...newKeyValidity(now, options),
      });
    }
  });
  return loadOwnKeys(db, encryption);
}

/** A peer domain's key as cached. */
export interface CachedPeerKey {
  keyId: Uint8Array;
  key: VerifyingKey;
  notBefore: Date;
  notAfter: Date;
}

/** The cached key list of `domain` and when it was fetched (undefined: never). */
export async function loadPeerKeys(
  db: Database,
  domain: string,
): Promise<{ keys: CachedPeerKey[]; fetchedAt: number } | undefined> {
  const rows = await db.select().from(peerKeys).where(eq(peerKeys.domain, domain));
  if (rows.length === 0) return undefined;
  const keys: CachedPeerKey[] = [];
  for (const row of rows) {
    try {
      keys.push({
        keyId: row.keyId,
        key: VerifyingKey.fromBytes(row.publicKey),
        notBefore: row.notBefore,
        notAfter: row.notAfter,
      });
    } catch {
      // A key that no longer imports is dropped from the cache; the next fetch replaces the list.
    }
  }
  return { keys, fetchedAt: Math.min(...rows.map((r) => r.fetchedAt.getTime())) };
}

/** Replaces the cached key list of `domain`. */
export async function storePeerKeys(
  db: Database,
  domain: string,
  keys: readonly CachedPeerKey[],
  fetchedAt: number,
): Promise<void> {
  await transaction(db, async (tx) => {
    await tx.delete(peerKeys).where(eq(peerKeys.domain, domain));
    if (keys.length === 0) return;
    await tx.insert(peerKeys).values(
      keys.map((k) => ({
        domain,
        keyId: k.keyId,
        publicKey: k.key.bytes,
        notBefore: k.notBefore,
        notAfter: k.notAfter,
        fetchedAt: new Date(fetchedAt),
      })),
    );
  });
}
