import { HpkePublicKey, isValidDomain, VerifyingKey } from "@phoenix/crypto";
import type { common } from "@phoenix/proto";
import { malformed, sizeLimit } from "./errors.js";
import { ID_LENGTH, KEY_LENGTH } from "./limits.js";

/** An Ed25519 public key field (32 bytes, a valid point). */
export function ed25519Key(bytes: Uint8Array, field: string): Uint8Array {
  if (bytes.length !== KEY_LENGTH) throw malformed(field, `must be ${KEY_LENGTH} bytes`);
  try {
    VerifyingKey.fromBytes(bytes);
  } catch {
    throw malformed(field, "is not an Ed25519 public key");
  }
  return bytes;
}

/** An X25519 (HPKE) public key field. */
export function x25519Key(bytes: Uint8Array, field: string): Uint8Array {
  if (bytes.length !== KEY_LENGTH) throw malformed(field, `must be ${KEY_LENGTH} bytes`);
  try {
    HpkePublicKey.fromBytes(bytes);
  } catch {
    throw malformed(field, "is not an X25519 public key");
  }
  return bytes;
}

/** A friendship token field (32 bytes). */
export function friendshipToken(bytes: Uint8Array, field: string): Uint8Array {
  if (bytes.length !== KEY_LENGTH) throw malformed(field, `must be ${KEY_LENGTH} bytes`);
  return bytes;
}

/** A byte field with a documented size limit (RESOURCE_EXHAUSTED above it). */
export function limited(bytes: Uint8Array, limit: number, field: string): Uint8Array {
  if (bytes.length > limit) throw sizeLimit(field, limit, bytes.length);
  return bytes;
}

/** A QualifiedGroupId field: 16-byte uuid and a domain. */
export function checkGroupId(
  group: common.QualifiedGroupId | undefined,
  field: string,
): common.QualifiedGroupId {
  if (group === undefined) throw malformed(field, "missing");
  if (group.uuid.length !== ID_LENGTH) throw malformed(`${field}.uuid`, `must be ${ID_LENGTH} bytes`);
  checkDomain(group.domain, `${field}.domain`);
  return group;
}

/** A domain field: the domain rule of ids and credentials ({@link isValidDomain}). */
export function checkDomain(domain: string, field: string): string {
  if (!isValidDomain(domain)) throw malformed(field, "not a lower-case domain name");
  return domain;
}
