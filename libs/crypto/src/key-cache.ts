import { asBuffer } from "./bytes.js";
import { InvalidInputError } from "./errors.js";

/**
 * A bounded least-recently-used map from raw key bytes to imported keys. Importing a key into
 * node:crypto costs far more than using it, and a server sees the same few public keys again and
 * again (a group's members, a domain's signers), so hot keys are parsed once.
 */
export class KeyCache<V> {
  private readonly entries = new Map<string, V>();

  /** `capacity`: how many keys to keep before the least recently used is dropped. */
  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new InvalidInputError("key cache capacity must be a positive integer");
    }
  }

  /** The value cached for `raw`, or `make()`'s value stored under it. Nothing is cached when `make` throws. */
  getOrCreate(raw: Uint8Array, make: () => V): V {
    const id = asBuffer(raw).toString("base64");
    const hit = this.entries.get(id);
    if (hit !== undefined) {
      // Refresh recency: Map iteration order is insertion order.
      this.entries.delete(id);
      this.entries.set(id, hit);
      return hit;
    }
    const made = make();
    this.entries.set(id, made);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    return made;
  }

  /** How many keys are cached. */
  get size(): number {
    return this.entries.size;
  }
}
