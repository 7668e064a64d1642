import type { KeyObject } from "node:crypto";
import {
  aesGcmOpen,
  aesGcmSeal,
  constantTimeEqual,
  ED25519_PKCS8_LENGTH,
  ED25519_PUBLIC_KEY_LENGTH,
  ED25519_SEED_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  type Ed25519KeyPair,
  ed25519FromPkcs8,
  ed25519FromSeed,
  ed25519Generate,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  HASH_LENGTH,
  HpkeKeyPair,
  HpkePublicKey,
  hkdfExpand,
  hkdfExtract,
  hmacSha256,
  hpkeOpenBase,
  hpkeReceiveExport,
  hpkeSealBase,
  hpkeSendExport,
  KeyCache,
  randomBytes,
  sha256,
} from "@phoenix/crypto";
import {
  type Ciphersuite,
  type CiphersuiteImpl,
  type CryptoProvider,
  defaultCryptoProvider,
  type Hash,
  type Hpke,
  type Kdf,
  type PrivateKey,
  type PublicKey,
  type Rng,
  type Signature,
} from "ts-mls";
import { CryptoError } from "ts-mls/mlsError.js";

// The primitives (HPKE, Ed25519, X25519, HKDF/HMAC/SHA-256, AES-GCM) are @phoenix/crypto's; this
// module only adapts them to ts-mls's CryptoProvider shapes and keeps per-provider key caches.

/** The one ciphersuite Phoenix uses. */
export const PHOENIX_CIPHERSUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" as const;

/** Options of {@link createNodeCryptoProvider}. */
export interface NodeCryptoProviderOptions {
  /** How many imported public keys (Ed25519 + X25519) to keep; default 16384. */
  publicKeyCacheSize?: number;
}

/**
 * Kept for compatibility: the provider reports every HPKE failure to ts-mls as its `CryptoError`
 * (what ts-mls expects), so this error is no longer thrown.
 * @deprecated catch ts-mls's `CryptoError` instead.
 */
export class HpkeOpenError extends Error {
  override name = "HpkeOpenError";
}

// ts-mls types HPKE keys as WebCrypto CryptoKeys but only ever hands them back to the Hpke
// object that made them, so @phoenix/crypto's key objects travel through it unchanged.
function asPublicKey(k: HpkePublicKey): PublicKey {
  return k as unknown as PublicKey;
}
function asPrivateKey(k: HpkeKeyPair): PrivateKey {
  return k as unknown as PrivateKey;
}
function fromPublicKey(k: PublicKey): HpkePublicKey {
  const key: unknown = k;
  if (!(key instanceof HpkePublicKey)) throw new CryptoError("HPKE public key was not made by this provider");
  return key;
}
function fromPrivateKey(k: PrivateKey): HpkeKeyPair {
  const key: unknown = k;
  if (!(key instanceof HpkeKeyPair)) throw new CryptoError("HPKE private key was not made by this provider");
  return key;
}

/**
 * Caches imported private keys by the identity of the byte array ts-mls keeps them in (its state
 * objects hold on to the same array), re-checking the bytes so a mutated array is never trusted.
 */
class PrivateKeyCache<T> {
  private readonly byArray = new WeakMap<Uint8Array, { raw: Uint8Array; value: T }>();

  constructor(private readonly make: (raw: Uint8Array) => T) {}

  get(raw: Uint8Array): T {
    const hit = this.byArray.get(raw);
    if (hit !== undefined && constantTimeEqual(hit.raw, raw)) return hit.value;
    const value = this.make(raw);
    this.byArray.set(raw, { raw: raw.slice(), value });
    return value;
  }
}

// The default provider hands out Ed25519 signing keys as 48-byte PKCS#8; ours are 32-byte seeds.
// Accept both so group state created by either provider keeps working.
function importSigningKey(signKey: Uint8Array): Ed25519KeyPair {
  if (signKey.byteLength === ED25519_SEED_LENGTH) return ed25519FromSeed(signKey);
  if (signKey.byteLength === ED25519_PKCS8_LENGTH) return ed25519FromPkcs8(signKey);
  throw new CryptoError(`Ed25519 signing key must be 32 or 48 bytes, got ${signKey.byteLength}`);
}

function makeSignature(verifyingKeys: KeyCache<KeyObject>): Signature {
  const signingKeys = new PrivateKeyCache((raw) => wrap("Ed25519 key import", () => importSigningKey(raw)));
  return {
    async sign(signKey, message) {
      return ed25519Sign(signingKeys.get(signKey).privateKey, message);
    },
    async verify(publicKey, message, signature) {
      if (publicKey.byteLength !== ED25519_PUBLIC_KEY_LENGTH) return false;
      if (signature.byteLength !== ED25519_SIGNATURE_LENGTH) return false;
      let key: KeyObject;
      try {
        key = verifyingKeys.getOrCreate(publicKey, () => ed25519PublicKey(publicKey));
      } catch {
        return false;
      }
      return ed25519Verify(key, message, signature);
    },
    async keygen() {
      const pair = ed25519Generate();
      return { signKey: pair.seed, publicKey: pair.publicKey };
    },
  };
}

function makeHash(): Hash {
  return {
    async digest(data) {
      return sha256(data);
    },
    async mac(key, data) {
      return hmacSha256(key, data);
    },
    async verifyMac(key, mac, data) {
      return constantTimeEqual(hmacSha256(key, data), mac);
    },
  };
}

function makeKdf(): Kdf {
  return {
    async extract(salt, ikm) {
      return hkdfExtract(salt, ikm);
    },
    async expand(prk, info, len) {
      return wrap("HKDF expand", () => hkdfExpand(prk, info, len));
    },
    size: HASH_LENGTH,
  };
}

// ts-mls expects its own CryptoError from a provider; @phoenix/crypto throws its own error classes.
function wrap<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CryptoError) throw e;
    throw new CryptoError(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const EMPTY = new Uint8Array(0);

function makeHpke(hpkeKeys: KeyCache<HpkePublicKey>): Hpke {
  const privateKeys = new PrivateKeyCache((raw) => HpkeKeyPair.fromPrivateBytes(raw));
  const importPublic = (raw: Uint8Array) => hpkeKeys.getOrCreate(raw, () => HpkePublicKey.fromBytes(raw));
  return {
    async open(privateKey, kemOutput, ciphertext, info, aad) {
      return wrap("HPKE open", () =>
        hpkeOpenBase(fromPrivateKey(privateKey), { enc: kemOutput, ciphertext }, info, aad ?? EMPTY),
      );
    },
    async seal(publicKey, plaintext, info, aad) {
      return wrap("HPKE seal", () => {
        const sealed = hpkeSealBase(fromPublicKey(publicKey), info, aad ?? EMPTY, plaintext);
        return { ct: sealed.ciphertext, enc: sealed.enc };
      });
    },
    async importPrivateKey(k) {
      return asPrivateKey(wrap("HPKE private key import", () => privateKeys.get(k)));
    },
    async importPublicKey(k) {
      return asPublicKey(wrap("HPKE public key import", () => importPublic(k)));
    },
    async exportPublicKey(k) {
      return fromPublicKey(k).bytes.slice();
    },
    async exportPrivateKey(k) {
      return fromPrivateKey(k).privateBytes.slice();
    },
    async encryptAead(key, nonce, aad, plaintext) {
      return wrap("AEAD encrypt", () => aesGcmSeal(key, nonce, aad ?? EMPTY, plaintext));
    },
    async decryptAead(key, nonce, aad, ciphertext) {
      return wrap("AEAD decrypt", () => aesGcmOpen(key, nonce, aad ?? EMPTY, ciphertext));
    },
    async exportSecret(publicKey, exporterContext, length, info) {
      return wrap("HPKE export", () =>
        hpkeSendExport(fromPublicKey(publicKey), info, exporterContext, length),
      );
    },
    async importSecret(privateKey, exporterContext, kemOutput, length, info) {
      return wrap("HPKE import secret", () =>
        hpkeReceiveExport(fromPrivateKey(privateKey), kemOutput, info, exporterContext, length),
      );
    },
    async deriveKeyPair(ikm) {
      const pair = wrap("HPKE derive key pair", () => HpkeKeyPair.derive(ikm));
      return { privateKey: asPrivateKey(pair), publicKey: asPublicKey(pair.publicKey) };
    },
    async generateKeyPair() {
      const pair = HpkeKeyPair.generate();
      return { privateKey: asPrivateKey(pair), publicKey: asPublicKey(pair.publicKey) };
    },
    keyLength: 16,
    nonceLength: 12,
  };
}

const rng: Rng = { randomBytes };

/**
 * A ts-mls CryptoProvider for ciphersuite 1 on @phoenix/crypto's node:crypto primitives, with
 * imported KeyObjects cached (the default provider re-imports WebCrypto keys on every call).
 * Other suites fall back to ts-mls's default provider.
 */
export function createNodeCryptoProvider(options: NodeCryptoProviderOptions = {}): CryptoProvider {
  // One budget for both key kinds: half for Ed25519 verifying keys, half for HPKE public keys.
  const size = Math.max(2, options.publicKeyCacheSize ?? 16_384);
  const verifyingKeys = new KeyCache<KeyObject>(Math.ceil(size / 2));
  const hpkeKeys = new KeyCache<HpkePublicKey>(Math.floor(size / 2));
  let suite1: CiphersuiteImpl | undefined;
  return {
    async getCiphersuiteImpl(cs: Ciphersuite): Promise<CiphersuiteImpl> {
      if (cs.name !== PHOENIX_CIPHERSUITE) return defaultCryptoProvider.getCiphersuiteImpl(cs);
      suite1 ??= {
        hash: makeHash(),
        hpke: makeHpke(hpkeKeys),
        signature: makeSignature(verifyingKeys),
        kdf: makeKdf(),
        rng,
        name: cs.name,
      };
      return suite1;
    },
  };
}

/** The process-wide node:crypto provider. */
export const nodeCryptoProvider: CryptoProvider = createNodeCryptoProvider();
