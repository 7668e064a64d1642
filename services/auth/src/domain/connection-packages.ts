import {
  bytesEqual,
  type ClientCredential,
  type CredentialVerifier,
  type VerifyingKey,
  verifyConnectionPackage,
} from "@phoenix/crypto";
import type { auth } from "@phoenix/proto";
import { hourFloor } from "./coarse-time.js";
import { checking, malformed, tooLarge } from "./errors.js";
import type { ClientKey } from "./ids.js";
import { Limits } from "./limits.js";

/** A checked package ready to store. */
export interface CheckedPackage {
  package: Uint8Array;
  lastResort: boolean;
  expiresAt: Date;
}

/** Who must have signed the packages. */
export type PackageSigner =
  | { kind: "client"; client: ClientKey; signatureKey: Uint8Array; verifier: CredentialVerifier }
  | { kind: "handle"; handleKey: VerifyingKey };

/**
 * Checks a publication: 1–100 packages of at most 4 KiB, at least one last resort, each a valid
 * libs/crypto ConnectionPackage signed by the publisher (the client's current credential, or the
 * handle key) and not expired. Packages are kept until their own lifetime ends or `maxLifetimeMs`
 * passes, whichever is first.
 */
export function checkPackages(
  packages: auth.PublishedConnectionPackage[],
  signer: PackageSigner,
  now: number,
  maxLifetimeMs: number,
): CheckedPackage[] {
  if (packages.length === 0) throw malformed("tbs.packages", "at least one package is required");
  if (packages.length > Limits.connectionPackagesPerPublish) {
    throw tooLarge("tbs.packages", Limits.connectionPackagesPerPublish, packages.length);
  }
  if (!packages.some((p) => p.lastResort))
    throw malformed("tbs.packages", "no package is marked last resort");
  return packages.map((p, i) => {
    const field = `tbs.packages[${i}].connection_package`;
    if (p.connectionPackage.length > Limits.connectionPackage) {
      throw tooLarge(field, Limits.connectionPackage, p.connectionPackage.length);
    }
    const verified = checking(
      field,
      () =>
        signer.kind === "client"
          ? verifyConnectionPackage(p.connectionPackage, { verifier: signer.verifier, now })
          : verifyConnectionPackage(p.connectionPackage, { handleKey: signer.handleKey, now }),
      { badSignatureIs: "invalid" },
    );
    if (signer.kind === "client") checkPackageCredential(verified.clientCredential, signer, field);
    else if (verified.clientCredential)
      throw malformed(field, "a handle package must not carry a client credential");
    return {
      package: p.connectionPackage,
      lastResort: p.lastResort,
      expiresAt: hourFloor(Math.min(verified.lifetime.notAfter, now + maxLifetimeMs)),
    };
  });
}

function checkPackageCredential(
  credential: ClientCredential | undefined,
  signer: Extract<PackageSigner, { kind: "client" }>,
  field: string,
): void {
  if (
    !credential ||
    !bytesEqual(credential.clientId.userId.uuid, signer.client.userUuid) ||
    !bytesEqual(credential.clientId.clientUuid, signer.client.clientUuid) ||
    !bytesEqual(credential.verifyingKey.bytes, signer.signatureKey)
  ) {
    throw malformed(field, "not signed by the sender's client credential");
  }
}
