import {
  type ConnectionPackage,
  checkValidAt,
  decodeAll,
  fingerprint,
  HpkePublicKey,
  KdfLabel,
  readExpiration,
} from "@phoenix/crypto";

/**
 * Reads a handle connection package as the AS hands it out. The initiator cannot check the handle
 * key's signature (the AS publishes no handle key; the AS checked it on publish), so this trusts
 * the AS for the handle → package binding, as a handle lookup does anyway. It checks the format
 * (a handle package: kind 1, no client credential) and the lifetime, and computes the package
 * hash the offer is bound to exactly as libs/crypto does.
 */
export function readHandleConnectionPackage(bytes: Uint8Array, now = Date.now()): ConnectionPackage {
  const p = decodeAll(bytes, "ConnectionPackage", (r) => {
    r.version([1]);
    const kind = r.u8("kind");
    if (kind !== 1) r.fail("kind", "not a handle connection package");
    const key = r.fixed("encryptionKey", 32);
    const lifetime = readExpiration(r);
    const credential = r.vec("clientCredential", 2, { max: 2048 });
    if (credential.length !== 0) r.fail("clientCredential", "a handle package carries no credential");
    r.fixed("signature", 64);
    return { key, lifetime };
  });
  checkValidAt(p.lifetime, now, "connection package");
  return {
    bytes: bytes.slice(),
    hash: fingerprint(KdfLabel.ConnectionPackageHash, bytes),
    encryptionKey: HpkePublicKey.fromBytes(p.key),
    lifetime: p.lifetime,
  };
}
