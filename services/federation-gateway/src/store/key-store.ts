import { SigningKey, signatureKeyId, VerifyingKey } from "@phoenix/crypto";
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

function toOwnKey(row: typeof ownKeys.$inferSelect): OwnSigningKey {
  return {
    keyId: row.keyId,
    publicKey: row.publicKey,
    notBefore: row.notBefore,
    notAfter: row.notAfter,
    signingKey: SigningKey.fromSeed(row.seed),
  };
}

/** Every own key row (including expired ones, which are pruned by {@link ensureOwnKeys}). */
export async function loadOwnKeys(db: Database): Promise<OwnSigningKey[]> {
  return (await db.select().from(ownKeys)).map(toOwnKey);
}

export interface EnsureOwnKeysOptions extends KeyScheduleConfig {
  now: number;
  /** An operator-provided seed (FEDERATION_SIGNING_KEY): pinned as the active key, no automatic rotation. */
  pinnedSeed?: Uint8Array | undefined;
}

/**
 * Makes sure a valid signing key exists: creates the first key on first start, rotates when the
 * active key is older than the rotation interval, or installs the operator's pinned key (every
 * other key then expires after the overlap). Replicas serialise on an advisory lock, so only one
 * of them creates a key. Returns all keys.
 */
export async function ensureOwnKeys(db: Database, options: EnsureOwnKeysOptions): Promise<OwnSigningKey[]> {
  const { now } = options;
  await transaction(db, async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${KEYS_LOCK})`);
    await tx.delete(ownKeys).where(lt(ownKeys.notAfter, new Date(now - options.overlapMs)));
    const keys = (await tx.select().from(ownKeys)).map(toOwnKey);
    if (options.pinnedSeed !== undefined) {
      const pinned = SigningKey.fromSeed(options.pinnedSeed);
      const keyId = signatureKeyId(pinned.verifyingKey);
      if (!keys.some((k) => Buffer.from(k.keyId).equals(keyId))) {
        await tx.insert(ownKeys).values({
          keyId,
          publicKey: pinned.publicKey,
          seed: options.pinnedSeed,
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
      await tx.insert(ownKeys).values({
        keyId: signatureKeyId(key.verifyingKey),
        publicKey: key.publicKey,
        seed: key.exportSeed(),
        ...newKeyValidity(now, options),
      });
    }
  });
  return loadOwnKeys(db);
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
