import { type Database, transaction } from "@phoenix/runtime/db";
import { addPackageExpiry, storedNotAfterMs } from "../domain/add-package.js";
import { type StorageKeys, StorageLabel } from "../domain/storage-keys.js";
import { addPackagesWithoutExpiry, setAddPackageExpiry } from "../store/add-packages.js";

/**
 * Gives AddPackages stored before they had an expiry one: their KeyPackage's notAfter or
 * `lifetimeMs` from now, whichever is first. Until then they are never handed out. Idempotent
 * (replicas starting at once write the same values); returns how many rows it filled.
 */
export async function fillAddPackageExpiry(
  db: Database,
  storage: StorageKeys,
  options: { now: number; lifetimeMs: number },
): Promise<number> {
  let filled = 0;
  for (;;) {
    const rows = await addPackagesWithoutExpiry(db, 500);
    if (rows.length === 0) return filled;
    await transaction(db, async (tx) => {
      for (const row of rows) {
        const bytes = storage.open(StorageLabel.AddPackage, row.encryptedAddPackage, row.clientId);
        const notAfterMs = storedNotAfterMs(bytes);
        await setAddPackageExpiry(
          tx,
          row.id,
          addPackageExpiry({ notAfterMs }, options.now, options.lifetimeMs),
        );
      }
    });
    filled += rows.length;
  }
}
