import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { bytesEqual, toHex } from "@phoenix/crypto";

/** Bounds of a {@link GroupStateCache}; any of them 0 turns the cache off. */
export interface StateCacheLimits {
  /** Groups held at most. */
  maxEntries: number;
  /** Encoded (plaintext, unpadded) state bytes held at most; a larger state is never cached. */
  maxBytes: number;
  /** An entry is forgotten this long after the last request that used it. */
  idleMs: number;
}

/** A decoded state as the cache hands it out: share-nothing copies come from `fork`. */
export interface Forkable<T> {
  fork(): T;
}

/** What a request may use instead of reading and decrypting the stored state. */
export interface CachedState<T> {
  /** The row's `state_tag` the decoded state belongs to. */
  readonly stateTag: Uint8Array;
  /** The decoded state; never handed to a handler as it is (see {@link GroupStateCache}). */
  readonly base: T;
}

interface Entry<T> extends CachedState<T> {
  /** Keyed hash of the EAR key that opened (or wrote) this state. */
  readonly keyTag: Uint8Array;
  readonly bytes: number;
  lastUsed: number;
}

/**
 * Decoded group states of recent requests, so a request need not read, decrypt and decode a
 * state the DS decoded a moment ago (issue #16, P2; security argument in docs/security.md,
 * "In-memory group-state cache"). An entry is used only when both hold:
 *
 * - the request's EAR key is the key the state was opened or written with: compared through a
 *   keyed hash under a per-process random key, so a request without the group's key never gets a
 *   hit and the cache holds no EAR key;
 * - the row's `state_tag`, read in the request's own (locked) read, is the tag of the cached
 *   state: every write draws a fresh random tag, so a state written since — by any replica — or a
 *   deleted and re-created group is never matched.
 *
 * Bounded by entries, encoded bytes and idle time; idle entries are dropped by a timer, not only
 * when touched. The cached state is never mutated: requests work on a fork of it.
 */
export class GroupStateCache<T extends Forkable<T>> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly tagKey = randomBytes(32);
  private bytes = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly limits: StateCacheLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.limits.maxEntries > 0 && this.limits.maxBytes > 0 && this.limits.idleMs > 0 && !this.closed;
  }

  /** Groups held (idle ones not yet swept included). */
  get size(): number {
    return this.entries.size;
  }

  /** Encoded state bytes held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The keyed hash a request's EAR key is compared by (this process only). */
  keyTag(earKey: Uint8Array): Uint8Array {
    return new Uint8Array(createHmac("sha256", this.tagKey).update(earKey).digest());
  }

  /**
   * The cached state of `groupId` if it was opened with the key of `keyTag` and is not idle; the
   * caller still compares its `stateTag` with the stored one before using it.
   */
  lookup(groupId: Uint8Array, keyTag: Uint8Array): CachedState<T> | undefined {
    const id = toHex(groupId);
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (this.isIdle(entry)) {
      this.remove(id, entry);
      return undefined;
    }
    if (!timingSafeEqual(entry.keyTag, keyTag)) return undefined;
    return { stateTag: entry.stateTag, base: entry.base };
  }

  /**
   * Marks the entry of `groupId` used, if it still holds `cached` (a hit); most recently used
   * entries are evicted last.
   */
  touch(groupId: Uint8Array, cached: CachedState<T>): void {
    const id = toHex(groupId);
    const entry = this.entries.get(id);
    if (entry === undefined || entry.base !== cached.base) return;
    entry.lastUsed = this.now();
    this.entries.delete(id);
    this.entries.set(id, entry);
  }

  /**
   * Holds `base`, the decoded state stored under `stateTag` and opened or written with the key of
   * `keyTag` (`bytes`: its encoded size). The caller gives up `base`: it must not change it after.
   */
  set(groupId: Uint8Array, stateTag: Uint8Array, keyTag: Uint8Array, base: T, bytes: number): void {
    const id = toHex(groupId);
    const old = this.entries.get(id);
    if (old !== undefined) this.remove(id, old);
    // An empty tag is a row written before tags existed: it can't be told from its next version.
    if (!this.enabled || stateTag.length === 0 || bytes > this.limits.maxBytes) return;
    this.entries.set(id, { stateTag, keyTag, base, bytes, lastUsed: this.now() });
    this.bytes += bytes;
    for (const [k, entry] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      this.remove(k, entry);
    }
    this.schedule();
  }

  /** Forgets `groupId` (a deleted group, or a state this process can no longer vouch for). */
  delete(groupId: Uint8Array): void {
    const id = toHex(groupId);
    const entry = this.entries.get(id);
    if (entry !== undefined) this.remove(id, entry);
  }

  /** Drops the entries idle for `idleMs`; returns how many. */
  sweep(): number {
    let dropped = 0;
    for (const [id, entry] of this.entries) {
      if (!this.isIdle(entry)) continue;
      this.remove(id, entry);
      dropped++;
    }
    return dropped;
  }

  /** Forgets everything and stops the expiry timer; the cache stays off. */
  close(): void {
    this.closed = true;
    this.entries.clear();
    this.bytes = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True when `entry` holds `stateTag` (the tag the request's read returned). */
  static matches(cached: CachedState<unknown> | undefined, stateTag: Uint8Array): boolean {
    return cached !== undefined && stateTag.length > 0 && bytesEqual(cached.stateTag, stateTag);
  }

  private isIdle(entry: Entry<T>): boolean {
    return this.now() - entry.lastUsed >= this.limits.idleMs;
  }

  private remove(id: string, entry: Entry<T>): void {
    this.entries.delete(id);
    this.bytes -= entry.bytes;
  }

  /** Idle entries leave memory within `idleMs` of going idle, whether or not requests come. */
  private schedule(): void {
    if (this.timer !== undefined || this.entries.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sweep();
      this.schedule();
    }, this.limits.idleMs);
    this.timer.unref?.();
  }
}
