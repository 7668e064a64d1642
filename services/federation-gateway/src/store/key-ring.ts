import type { KeyEncryptionKeys } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import { activeKey, type KeyScheduleConfig, publishedKeys } from "../domain/key-schedule.js";
import { ensureOwnKeys, type OwnSigningKey } from "./key-store.js";

export interface KeyRingOptions extends KeyScheduleConfig {
  db: Database;
  logger: Logger;
  pinnedSeed?: Uint8Array | undefined;
  /** Seals the seeds kept in the database (FEDERATION_KEY_ENCRYPTION_KEY). */
  encryption: KeyEncryptionKeys;
  now?: () => number;
}

/**
 * This domain's federation keys in memory: the active signing key and the published list. Every
 * replica reloads them periodically (the gateway's "key refresh" worker calls `refresh`),
 * rotating when due (one replica creates the key, the others load it).
 */
export class KeyRing {
  private keys: OwnSigningKey[] = [];
  private readonly now: () => number;

  private constructor(private readonly options: KeyRingOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Loads (creating the first key when there is none). */
  static async open(options: KeyRingOptions): Promise<KeyRing> {
    const ring = new KeyRing(options);
    await ring.refresh();
    return ring;
  }

  /** Rotates when due and reloads. */
  async refresh(): Promise<void> {
    const before = this.active()?.keyId;
    this.keys = await ensureOwnKeys(this.options.db, {
      now: this.now(),
      rotationMs: this.options.rotationMs,
      overlapMs: this.options.overlapMs,
      pinnedSeed: this.options.pinnedSeed,
      encryption: this.options.encryption,
    });
    const after = this.active()?.keyId;
    if (after && (!before || Buffer.compare(before, after) !== 0)) {
      this.options.logger.info(
        { keyId: Buffer.from(after).toString("hex") },
        "federation signing key active",
      );
    }
  }

  /** The key that signs now. */
  active(): OwnSigningKey | undefined {
    return activeKey(this.keys, this.now());
  }

  /** The keys peers may verify with now. */
  published(): OwnSigningKey[] {
    return publishedKeys(this.keys, this.now());
  }
}
