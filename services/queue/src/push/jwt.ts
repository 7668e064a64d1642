import { createSign, type KeyObject } from "node:crypto";

/** base64url without padding (RFC 7515 §2). */
export function base64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === "string" ? Buffer.from(data, "utf8") : data).toString("base64url");
}

/**
 * A compact JWS (JWT) signed with ES256 (P-256, signature in the JOSE raw r||s form) or RS256
 * (RSASSA-PKCS1-v1_5 with SHA-256); `header` comes after `alg`. APNs provider tokens are ES256,
 * Google service-account grants RS256.
 */
export function signJwt(
  alg: "ES256" | "RS256",
  key: KeyObject,
  header: Record<string, string>,
  claims: Record<string, string | number>,
): string {
  const input = `${base64url(JSON.stringify({ alg, ...header }))}.${base64url(JSON.stringify(claims))}`;
  const signer = createSign("SHA256");
  signer.update(input);
  // JOSE wants r||s for ECDSA, not the DER sequence node:crypto gives by default.
  const signature = alg === "ES256" ? signer.sign({ key, dsaEncoding: "ieee-p1363" }) : signer.sign(key);
  return `${input}.${base64url(signature)}`;
}
