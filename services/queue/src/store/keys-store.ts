import { DecryptionError } from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { eq, inArray, sql } from "drizzle-orm";
import { type KeyKind, type KeyRecord, planRotation, type RotationPolicy } from "../domain/key-ring.js";
import { type StorageKeys, StorageLabel } from "../domain/storage-keys.js";
import { qsKeys } from "./schema.js";

/** Serialises key creation and rotation across replicas (transaction-scoped advisory lock). */
const KEYS_LOCK = 0x51_5f_6b_65;

/** The stored keys do not open under this storage key: the operator gave another secret. */
export class StorageKeyMismatchError extends Error {
  override readonly name = "StorageKeyMismatchError";
}

/** Every stored key, private halves unwrapped. */
export async function loadKeyRecords(db: Database, storage: StorageKeys): Promise<KeyRecord[]> {
  const rows = await db.select().from(qsKeys);
  return rows.map((row) => {
    let privateKey: Uint8Array;
    try {
      privateKey = storage.open(StorageLabel.KeyWrap, row.wrappedPrivateKey, row.keyId);
    } catch (error) {
      if (!(error instanceof DecryptionError)) throw error;
      // Starting anyway would serve nothing the database holds (queues, ratchets, tokens).
      throw new StorageKeyMismatchError(
        "the QS keys in the database do not open under this storage key: QS_STORAGE_KEY (or " +
          "$DATA_DIR/queue/storage.key) is not the secret this database was created with — restore " +
          "the original one (docs/operations.md)",
        { cause: error },
      );
    }
    return {
      keyId: row.keyId,
      kind: row.kind as KeyKind,
      publicKey: row.publicKey,
      privateKey,
      notBefore: row.notBefore,
      notAfter: row.notAfter,
    };
  });
}

export interface EnsureKeysOptions {
  now: Date;
  rotationIntervalMs: number;
  retirementGraceMs: number;
  providedConfigKey?: Uint8Array | undefined;
  providedSigningKey?: Uint8Array | undefined;
  /** Rotate both kinds now. */
  force?: boolean;
}

/**
 * Creates the keys on first start, rotates them when due (or forced, or when the operator
 * provided different ones) and deletes retired keys past their grace — all under one lock, so
 * replicas starting together agree on one key. Returns the resulting records.
 */
export async function ensureKeys(
  db: Database,
  storage: StorageKeys,
  options: EnsureKeysOptions,
): Promise<KeyRecord[]> {
  await transaction(db, async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${KEYS_LOCK})`);
    const records = await loadKeyRecords(tx, storage);
    for (const kind of ["queue_config", "signing"] as const) {
      const policy: RotationPolicy = {
        now: options.now,
        rotationIntervalMs: options.rotationIntervalMs,
        retirementGraceMs: options.retirementGraceMs,
        provided: kind === "queue_config" ? options.providedConfigKey : options.providedSigningKey,
        force: options.force ?? false,
      };
      const plan = planRotation(
        kind,
        records.filter((r) => r.kind === kind),
        policy,
      );
      for (const retire of plan.retire) {
        await tx.update(qsKeys).set({ notAfter: retire.notAfter }).where(eq(qsKeys.keyId, retire.keyId));
      }
      if (plan.remove.length > 0) await tx.delete(qsKeys).where(inArray(qsKeys.keyId, plan.remove));
      for (const record of plan.create) {
        const row = {
          keyId: record.keyId,
          kind: record.kind,
          publicKey: record.publicKey,
          wrappedPrivateKey: storage.seal(StorageLabel.KeyWrap, record.privateKey, record.keyId),
          notBefore: record.notBefore,
          notAfter: null,
        };
        await tx
          .insert(qsKeys)
          .values(row)
          .onConflictDoUpdate({ target: qsKeys.keyId, set: { notBefore: row.notBefore, notAfter: null } });
      }
    }
  });
  return loadKeyRecords(db, storage);
}
