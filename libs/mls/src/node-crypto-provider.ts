import { generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
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
import { type HpkePrivateKey, type HpkePublicKey, NodeHpke } from "./node-hpke.js";
import {
  aesGcmOpen,
  aesGcmSeal,
  bytesEqual,
  exportRawPrivateKey,
  exportRawPublicKey,
  hkdfExpand,
  hkdfExtract,
  hmacSha256,
  importRawPrivateKey,
  importRawPublicKey,
  KeyObjectCache,
  randomBytes,
  sha256,
} from "./node-primitives.js";

/** The one ciphersuite Phoenix uses. */
export const PHOENIX_CIPHERSUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" as const;

/** Options of {@link createNodeCryptoProvider}. */
export interface NodeCryptoProviderOptions {
  /** How many imported public keys (Ed25519 + X25519) to keep; default 16384. */
  publicKeyCacheSize?: number;
}

// ts-mls types HPKE keys as WebCrypto CryptoKeys but only ever hands them back to the Hpke
// object that made them, so our own key objects travel through it unchanged.
function asPublicKey(k: HpkePublicKey): PublicKey {
  return k as unknown as PublicKey;
}
function asPrivateKey(k: HpkePrivateKey): PrivateKey {
  return k as unknown as PrivateKey;
}
function fromPublicKey(k: PublicKey): HpkePublicKey {
  const key = k as unknown as HpkePublicKey;
  if (key.kind !== "hpke-x25519-public")
    throw new CryptoError("HPKE public key was not made by this provider");
  return key;
}
function fromPrivateKey(k: PrivateKey): HpkePrivateKey {
  const key = k as unknown as HpkePrivateKey;
  if (key.kind !== "hpke-x25519-private")
    throw new CryptoError("HPKE private key was not made by this provider");
  return key;
}

/**
 * Caches imported private keys by the identity of the byte array ts-mls keeps them in (its state
 * objects hold on to the same array), re-checking the bytes so a mutated array is never trusted.
 */
class PrivateKeyCache<T extends { raw: Uint8Array }> {
  private readonly byArray = new WeakMap<Uint8Array, T>();

  constructor(private readonly make: (raw: Uint8Array) => T) {}

  get(raw: Uint8Array): T {
    const hit = this.byArray.get(raw);
    if (hit !== undefined && bytesEqual(hit.raw, raw)) return hit;
    const made = this.make(raw);
    this.byArray.set(raw, made);
    return made;
  }
}

// The default provider hands out Ed25519 signing keys as 48-byte PKCS#8; ours are 32-byte seeds.
// Accept both so group state created by either provider keeps working.
function ed25519Seed(signKey: Uint8Array): Uint8Array {
  if (signKey.byteLength === 32) return signKey;
  if (signKey.byteLength === 48) return signKey.subarray(16);
  throw new CryptoError(`Ed25519 signing key must be 32 or 48 bytes, got ${signKey.byteLength}`);
}

function makeSignature(publicKeys: KeyObjectCache): Signature {
  const signingKeys = new PrivateKeyCache((raw) => ({
    raw: raw.slice(),
    key: importRawPrivateKey("ed25519", ed25519Seed(raw)),
  }));
  return {
    async sign(signKey, message) {
      return new Uint8Array(sign(null, message, signingKeys.get(signKey).key));
    },
    async verify(publicKey, message, signature) {
      if (publicKey.byteLength !== 32 || signature.byteLength !== 64) return false;
      let key: KeyObject;
      try {
        key = publicKeys.get("ed25519", publicKey, () => importRawPublicKey("ed25519", publicKey));
      } catch {
        return false;
      }
      return verify(null, message, key, signature);
    },
    async keygen() {
      const pair = generateKeyPairSync("ed25519");
      return { signKey: exportRawPrivateKey(pair.privateKey), publicKey: exportRawPublicKey(pair.publicKey) };
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
      return bytesEqual(hmacSha256(key, data), mac);
    },
  };
}

function makeKdf(): Kdf {
  return {
    async extract(salt, ikm) {
      return hkdfExtract(salt, ikm);
    },
    async expand(prk, info, len) {
      return hkdfExpand(prk, info, len);
    },
    size: 32,
  };
}

function wrap<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CryptoError) throw e;
    throw new CryptoError(`${what}: ${(e as Error).message}`);
  }
}

function makeHpke(publicKeys: KeyObjectCache): Hpke {
  const hpke = new NodeHpke(publicKeys);
  const privateKeys = new PrivateKeyCache((raw) => hpke.importPrivateKey(raw));
  return {
    async open(privateKey, kemOutput, ciphertext, info, aad) {
      return wrap("HPKE open", () => hpke.open(fromPrivateKey(privateKey), kemOutput, ciphertext, info, aad));
    },
    async seal(publicKey, plaintext, info, aad) {
      return wrap("HPKE seal", () => hpke.seal(fromPublicKey(publicKey), plaintext, info, aad));
    },
    async importPrivateKey(k) {
      return asPrivateKey(wrap("HPKE private key import", () => privateKeys.get(k)));
    },
    async importPublicKey(k) {
      return asPublicKey(wrap("HPKE public key import", () => hpke.importPublicKey(k)));
    },
    async exportPublicKey(k) {
      return fromPublicKey(k).raw.slice();
    },
    async exportPrivateKey(k) {
      return fromPrivateKey(k).raw.slice();
    },
    async encryptAead(key, nonce, aad, plaintext) {
      return aesGcmSeal(key, nonce, aad ?? new Uint8Array(0), plaintext);
    },
    async decryptAead(key, nonce, aad, ciphertext) {
      return wrap("AEAD decrypt", () => aesGcmOpen(key, nonce, aad ?? new Uint8Array(0), ciphertext));
    },
    async exportSecret(publicKey, exporterContext, length, info) {
      return wrap("HPKE export", () =>
        hpke.exportSecret(fromPublicKey(publicKey), exporterContext, length, info),
      );
    },
    async importSecret(privateKey, exporterContext, kemOutput, length, info) {
      return wrap("HPKE import secret", () =>
        hpke.importSecret(fromPrivateKey(privateKey), exporterContext, kemOutput, length, info),
      );
    },
    async deriveKeyPair(ikm) {
      const pair = hpke.deriveKeyPair(ikm);
      return { privateKey: asPrivateKey(pair.privateKey), publicKey: asPublicKey(pair.publicKey) };
    },
    async generateKeyPair() {
      const pair = hpke.generateKeyPair();
      return { privateKey: asPrivateKey(pair.privateKey), publicKey: asPublicKey(pair.publicKey) };
    },
    keyLength: 16,
    nonceLength: 12,
  };
}

const rng: Rng = { randomBytes };

/**
 * A ts-mls CryptoProvider for ciphersuite 1 on node:crypto, with imported KeyObjects cached
 * (the default provider re-imports WebCrypto keys on every call). Other suites fall back to
 * ts-mls's default provider.
 */
export function createNodeCryptoProvider(options: NodeCryptoProviderOptions = {}): CryptoProvider {
  const publicKeys = new KeyObjectCache(options.publicKeyCacheSize ?? 16_384);
  let suite1: CiphersuiteImpl | undefined;
  return {
    async getCiphersuiteImpl(cs: Ciphersuite): Promise<CiphersuiteImpl> {
      if (cs.name !== PHOENIX_CIPHERSUITE) return defaultCryptoProvider.getCiphersuiteImpl(cs);
      suite1 ??= {
        hash: makeHash(),
        hpke: makeHpke(publicKeys),
        signature: makeSignature(publicKeys),
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
