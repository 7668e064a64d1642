import { bytesEqual, LeafCredential } from "@phoenix/crypto";
import type { CredentialValidator } from "@phoenix/mls";
import type { Credential } from "ts-mls";

/**
 * Phoenix leaf credentials as the DS sees them: an MLS Basic credential whose identity is a
 * libs/crypto LeafCredential. The DS can check its structure, that it names the leaf's own
 * signature key and that it is valid now; the client credential's signature inside is encrypted
 * for the members, who verify it.
 *
 * The LeafCredential's identity is the user's pseudonym in this group: every client of one user
 * uses the same pseudonym within a group (and a fresh one in every other group, so leaves cannot
 * be linked across groups). That is how the DS knows which leaves belong to one user — for
 * "remove a user = all of its clients" and for "non-admins add and remove only their own
 * clients" — without learning who the user is. Members check that the client credentials
 * behind one pseudonym name one user.
 */
export function leafCredentialOf(credential: Credential): LeafCredential | undefined {
  if (credential.credentialType !== "basic") return undefined;
  try {
    return LeafCredential.decode(credential.identity);
  } catch {
    return undefined;
  }
}

/** The user pseudonym of a leaf (see {@link leafCredentialOf}); throws on a non-Phoenix credential. */
export function userPseudonymOf(credential: Credential): Uint8Array {
  const leaf = leafCredentialOf(credential);
  if (leaf === undefined) throw new TypeError("not a Phoenix leaf credential");
  return leaf.identity;
}

/** The PublicGroup credential callback: Phoenix leaf credential, bound to the leaf key, valid at `now`. */
export function phoenixCredentialValidator(now: () => number): CredentialValidator {
  return (credential, signaturePublicKey, context) => {
    const leaf = leafCredentialOf(credential);
    if (leaf === undefined) return false;
    if (!bytesEqual(leaf.verifyingKey.bytes, signaturePublicKey)) return false;
    // Leaves already in the tree were checked when they entered; expiry of old leaves is
    // handled by DS-induced removals, not by refusing every later commit.
    if (context.source === "tree") return true;
    const t = now();
    return leaf.expiration.notBefore <= t && t <= leaf.expiration.notAfter;
  };
}
