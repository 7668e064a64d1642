import {
  HpkeKeyPair,
  HpkePublicKey,
  hpkeKeyId,
  SigningKey,
  signatureKeyId,
  toHex,
  VerifyingKey,
} from "@phoenix/crypto";

/** What the QS keeps of one of its key pairs. */
export interface KeyRecord {
  keyId: Uint8Array;
  kind: KeyKind;
  publicKey: Uint8Array;
  /** Raw private key (HPKE) or Ed25519 seed (signing). */
  privateKey: Uint8Array;
  notBefore: Date;
  /** Set once rotated out. */
  notAfter: Date | null;
}

export type KeyKind = "queue_config" | "signing";

/**
 * 16-byte id of a QS public key, as libs/crypto computes it: `hpkeKeyId` for a queue-config key
 * (the id a sealed queue config or push token names) and `signatureKeyId` for a signing key.
 */
export function keyIdOf(kind: KeyKind, publicKey: Uint8Array): Uint8Array {
  return kind === "queue_config"
    ? hpkeKeyId(HpkePublicKey.fromBytes(publicKey))
    : signatureKeyId(VerifyingKey.fromBytes(publicKey));
}

/** A fresh key record of `kind`. */
export function generateKeyRecord(kind: KeyKind, now: Date, privateKey?: Uint8Array): KeyRecord {
  if (kind === "queue_config") {
    const pair = privateKey ? HpkeKeyPair.fromPrivateBytes(privateKey) : HpkeKeyPair.generate();
    const publicKey = pair.publicKey.bytes;
    return {
      keyId: keyIdOf(kind, publicKey),
      kind,
      publicKey,
      privateKey: pair.privateBytes,
      notBefore: now,
      notAfter: null,
    };
  }
  const key = privateKey ? SigningKey.fromSeed(privateKey) : SigningKey.generate();
  return {
    keyId: keyIdOf(kind, key.publicKey),
    kind,
    publicKey: key.publicKey,
    privateKey: key.exportSeed(),
    notBefore: now,
    notAfter: null,
  };
}

/** What to change in the stored keys of one kind. */
export interface RotationPlan {
  /** Records to insert (at most one: the new current key). */
  create: KeyRecord[];
  /** Ids of keys to retire, with the time they stop being accepted. */
  retire: { keyId: Uint8Array; notAfter: Date }[];
  /** Ids of retired keys past their end, to delete. */
  remove: Uint8Array[];
}

export interface RotationPolicy {
  now: Date;
  /** Generated keys are replaced after this long (0: never). */
  rotationIntervalMs: number;
  /** A retired key keeps working this long. */
  retirementGraceMs: number;
  /** An operator-provided private key: it must be the current key. */
  provided?: Uint8Array | undefined;
  /** Rotate now regardless of age. */
  force?: boolean;
}

/**
 * Decides, for the stored keys of one kind, whether a new current key is needed (none yet, the
 * operator provided another one, the current one is older than the rotation interval) and which
 * old keys retire or go. Old queue-config keys stay usable for the grace period because sealed
 * queue configs made with them sit in DS group states until the client refreshes them.
 */
export function planRotation(
  kind: KeyKind,
  records: readonly KeyRecord[],
  policy: RotationPolicy,
): RotationPlan {
  const now = policy.now.getTime();
  const active = records.filter((r) => r.notAfter === null);
  const current = newest(active);
  let replace = current === undefined || policy.force === true;
  let created: KeyRecord | undefined;
  if (policy.provided !== undefined) {
    const wanted = generateKeyRecord(kind, policy.now, policy.provided);
    if (current === undefined || !sameBytes(current.publicKey, wanted.publicKey)) {
      // A provided key that was retired before comes back as current (the store upserts).
      replace = true;
      created = wanted;
    } else {
      replace = false;
    }
  } else if (
    current !== undefined &&
    policy.rotationIntervalMs > 0 &&
    now - current.notBefore.getTime() >= policy.rotationIntervalMs
  ) {
    replace = true;
  }
  const plan: RotationPlan = { create: [], retire: [], remove: [] };
  if (replace) {
    const fresh = created ?? generateKeyRecord(kind, policy.now);
    plan.create.push(fresh);
    for (const r of active) {
      if (!sameBytes(r.publicKey, fresh.publicKey)) {
        plan.retire.push({ keyId: r.keyId, notAfter: new Date(now + policy.retirementGraceMs) });
      }
    }
  }
  for (const r of records) {
    if (r.notAfter !== null && r.notAfter.getTime() <= now) plan.remove.push(r.keyId);
  }
  return plan;
}

function newest(records: readonly KeyRecord[]): KeyRecord | undefined {
  let best: KeyRecord | undefined;
  for (const r of records) if (!best || r.notBefore.getTime() > best.notBefore.getTime()) best = r;
  return best;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A queue-config key as the QS uses it. */
export interface ConfigKey {
  keyId: Uint8Array;
  pair: HpkeKeyPair;
  notBefore: Date;
  notAfter: Date | null;
}

/** A signing key as the QS uses it. */
export interface QsSigningKey {
  keyId: Uint8Array;
  key: SigningKey;
  notBefore: Date;
  notAfter: Date | null;
}

/**
 * The QS keys in memory: imported once (node:crypto KeyObjects), current key first. A sealed
 * queue config or push token names the queue-config key it was sealed to, so the QS picks that
 * one key by its id ({@link KeyRing.usableConfigKey}) instead of trying each.
 */
export class KeyRing {
  readonly configKeys: readonly ConfigKey[];
  readonly signingKeys: readonly QsSigningKey[];
  private readonly configKeysById: ReadonlyMap<string, ConfigKey>;

  constructor(records: readonly KeyRecord[]) {
    const byNewest = [...records].sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime());
    const order = (r: KeyRecord) => (r.notAfter === null ? 0 : 1);
    byNewest.sort((a, b) => order(a) - order(b));
    this.configKeys = byNewest
      .filter((r) => r.kind === "queue_config")
      .map((r) => ({
        // Recomputed from the public key: the id clients see and sealed configs name, whatever
        // id the row was stored under.
        keyId: keyIdOf("queue_config", r.publicKey),
        pair: HpkeKeyPair.fromPrivateBytes(r.privateKey),
        notBefore: r.notBefore,
        notAfter: r.notAfter,
      }));
    this.configKeysById = new Map(this.configKeys.map((k) => [toHex(k.keyId), k]));
    this.signingKeys = byNewest
      .filter((r) => r.kind === "signing")
      .map((r) => ({
        keyId: keyIdOf("signing", r.publicKey),
        key: SigningKey.fromSeed(r.privateKey),
        notBefore: r.notBefore,
        notAfter: r.notAfter,
      }));
  }

  /** The key clients seal new queue configs to. */
  get currentConfigKey(): ConfigKey | undefined {
    const first = this.configKeys[0];
    return first?.notAfter === null ? first : undefined;
  }

  /** The key that signs what the QS originates. */
  get currentSigningKey(): QsSigningKey | undefined {
    const first = this.signingKeys[0];
    return first?.notAfter === null ? first : undefined;
  }

  /** Queue-config keys that may still open sealed configs at `now`, current first. */
  usableConfigKeys(now: number): ConfigKey[] {
    return this.configKeys.filter((k) => k.notAfter === null || k.notAfter.getTime() > now);
  }

  /** The queue-config key with this id if it may still open sealed configs at `now`. */
  usableConfigKey(keyId: Uint8Array, now: number): ConfigKey | undefined {
    const key = this.configKeysById.get(toHex(keyId));
    if (key === undefined || (key.notAfter !== null && key.notAfter.getTime() <= now)) return undefined;
    return key;
  }
}
