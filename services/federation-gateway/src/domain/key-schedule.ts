// The domain federation key schedule: one active signing key, rotated every `rotationMs`; a
// retired key stays published (and valid) for `overlapMs`, so peers that cached the old list
// still verify while they learn the new one.

/** One of this domain's federation keys as stored. */
export interface OwnKey {
  keyId: Uint8Array;
  publicKey: Uint8Array;
  notBefore: Date;
  notAfter: Date;
}

export interface KeyScheduleConfig {
  /** How long a key signs before the next one takes over. */
  rotationMs: number;
  /** How long a retired key stays valid after its successor took over. */
  overlapMs: number;
}

/** The keys peers may verify with at `now` (GetDomainKeys). */
export function publishedKeys<K extends OwnKey>(keys: readonly K[], now: number): K[] {
  return keys.filter((k) => k.notBefore.getTime() <= now && k.notAfter.getTime() > now);
}

/** The key that signs at `now`: the newest published one. */
export function activeKey<K extends OwnKey>(keys: readonly K[], now: number): K | undefined {
  return publishedKeys(keys, now).sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime())[0];
}

/** True when a new key must be created: none is active, or the active one is older than `rotationMs`. */
export function rotationDue(keys: readonly OwnKey[], now: number, config: KeyScheduleConfig): boolean {
  const active = activeKey(keys, now);
  return active === undefined || now - active.notBefore.getTime() >= config.rotationMs;
}

/** Validity of a key created at `now`: it signs for `rotationMs`, then overlaps for `overlapMs`. */
export function newKeyValidity(now: number, config: KeyScheduleConfig): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now), notAfter: new Date(now + config.rotationMs + config.overlapMs) };
}
