import {
  AsCredential,
  AsIntermediateCredential,
  CredentialVerifier,
  FINGERPRINT_LENGTH,
} from "@phoenix/crypto";
import type { auth } from "@phoenix/proto";
import { UnavailableError } from "@phoenix/runtime/errors";

/**
 * Checks another domain's GetAsCredentials answer before it is cached and served: it is about
 * the domain asked for, has at least one root, every root is self-signed for that domain and
 * valid at `now`, every intermediate is signed by one of those roots. A peer (or a gateway in
 * between) that answers for another domain or with a broken chain would otherwise plant trust
 * anchors every local client relies on; the answer is refused UNAVAILABLE (the peer is not
 * usable) and nothing is stored.
 */
export function checkRemoteCredentials(
  answer: auth.GetAsCredentialsResponse,
  domain: string,
  now: number,
): void {
  const refuse = (problem: string, cause?: unknown) =>
    new UnavailableError(`the AS credentials ${domain} answered are unusable: ${problem}`, { cause });
  if (answer.domain !== domain) throw refuse(`they are for "${answer.domain}"`);
  if (answer.asCredentials.length === 0) throw refuse("no AS root credential");
  const verifier = new CredentialVerifier({ revoked: answer.revokedFingerprints, now: () => now });
  for (const [i, bytes] of answer.asCredentials.entries()) {
    try {
      const root = AsCredential.decode(bytes);
      if (root.domain !== domain) throw refuse(`root ${i} is for "${root.domain}"`);
      verifier.addRoot(root, now);
    } catch (error) {
      if (error instanceof UnavailableError) throw error;
      throw refuse(`root ${i}: ${describe(error)}`, error);
    }
  }
  for (const [i, bytes] of answer.asIntermediateCredentials.entries()) {
    try {
      verifier.addIntermediate(AsIntermediateCredential.decode(bytes), now);
    } catch (error) {
      throw refuse(`intermediate ${i}: ${describe(error)}`, error);
    }
  }
  for (const [i, fingerprint] of answer.revokedFingerprints.entries()) {
    if (fingerprint.length !== FINGERPRINT_LENGTH) {
      throw refuse(`revoked fingerprint ${i} is not ${FINGERPRINT_LENGTH} bytes`);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
