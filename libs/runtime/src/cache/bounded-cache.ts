/** Options of {@link BoundedCache}. */
export interface BoundedCacheOptions<K, V> {
  /** At most this many entries; setting one more evicts the least recently used. */
  maxEntries: number;
  /** An entry is forgotten this long after it was set (Infinity: only evicted by count). */
  ttlMs: number;
  /** Clock in ms (default Date.now); tests move it to expire entries. */
  now?: () => number;
  /** Called with every entry that leaves other than by {@link BoundedCache.delete} or a replacing set. */
  onEvict?: (key: K, value: V) => void;
}

/**
 * A map that cannot grow without bound: least-recently-used eviction beyond `maxEntries` and
 * expiry `ttlMs` after an entry was set. For caches keyed by what remote parties choose (peer
 * domains, DNS names), where an unbounded map is a memory exhaustion waiting to happen.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAt: number }>();
  private readonly now: () => number;

  constructor(private readonly options: BoundedCacheOptions<K, V>) {
    if (!(options.maxEntries >= 1)) throw new RangeError("maxEntries must be at least 1");
    this.now = options.now ?? Date.now;
  }

  /** The live value of `key` (and marks it recently used); undefined if absent or expired. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.now()) {
      this.options.onEvict?.(key, entry.value);
      return undefined;
    }
    // Map iteration follows insertion order: re-inserting makes it the most recently used.
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Sets `key`, evicting expired entries and then the least recently used beyond the limit. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    if (this.entries.size <= this.options.maxEntries) return;
    const now = this.now();
    for (const [k, entry] of this.entries) {
      if (entry.expiresAt <= now) this.evict(k, entry.value);
    }
    for (const [k, entry] of this.entries) {
      if (this.entries.size <= this.options.maxEntries) break;
      this.evict(k, entry.value);
    }
  }

  /** Removes `key` without calling `onEvict`; true if it was there. */
  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.entries.size;
  }

  /** Every value held (expired ones included), least recently used first. */
  values(): V[] {
    return [...this.entries.values()].map((e) => e.value);
  }

  /** Forgets everything without calling `onEvict`. */
  clear(): void {
    this.entries.clear();
  }

  private evict(key: K, value: V): void {
    this.entries.delete(key);
    this.options.onEvict?.(key, value);
  }
}
