// Verifying credentials of users of several domains: each domain's client credentials chain to
// that domain's AS credentials, fetched through this client's own AS (`GetAsCredentials{domain}`,
// which the AS answers from its cache of the peer's credentials).
import {
  AsCredential,
  AsIntermediateCredential,
  type ClientCredential,
  CredentialVerifier,
  UnknownSignerError,
} from "@phoenix/crypto";
import { PhoenixClientError } from "../errors.js";

/** The AS credentials one domain publishes (the `GetAsCredentials` answer). */
export interface DomainAsCredentials {
  domain: string;
  asCredentials: Uint8Array[];
  asIntermediateCredentials: Uint8Array[];
  revokedFingerprints: Uint8Array[];
}

/** A credential of a domain whose AS credentials the client has not (yet) fetched. */
export class UnknownDomainCredentialsError extends PhoenixClientError {
  override name = "UnknownDomainCredentialsError";
}

/**
 * A credential verifier holding the AS credentials of every domain it was taught. A client
 * credential is verified only against its own domain's chain (the underlying verifier checks the
 * domains match). When it cannot verify for lack of a domain's credentials (never fetched, or an
 * intermediate newer than the fetched list), it remembers the domain in {@link missing}, so the
 * caller can fetch them and retry.
 */
export class DomainVerifier extends CredentialVerifier {
  private readonly domains = new Set<string>();
  /** The domain the last failed verification lacked credentials for. */
  missing: string | undefined;

  /** Whether this domain's AS credentials were added. */
  knows(domain: string): boolean {
    return this.domains.has(domain);
  }

  /**
   * Adds a domain's AS credentials. Every root must belong to `answer.domain` (an AS relays other
   * domains' credentials: one naming the wrong domain is refused rather than trusted).
   */
  learn(answer: DomainAsCredentials): void {
    for (const bytes of answer.asCredentials) {
      const root = AsCredential.decode(bytes);
      if (root.domain !== answer.domain)
        throw new PhoenixClientError(`AS credentials of ${answer.domain} include one of ${root.domain}`);
      this.addRoot(root);
    }
    for (const bytes of answer.asIntermediateCredentials) {
      try {
        this.addIntermediate(AsIntermediateCredential.decode(bytes));
      } catch {
        // An expired, revoked or foreign intermediate signs nothing we accept.
      }
    }
    for (const fingerprint of answer.revokedFingerprints) this.revoke(fingerprint);
    this.domains.add(answer.domain);
  }

  override verifyClientCredential(credential: ClientCredential, now?: number): ClientCredential {
    const domain = credential.clientId.userId.domain;
    if (!this.domains.has(domain)) {
      this.missing = domain;
      throw new UnknownDomainCredentialsError(`no AS credentials of ${domain} yet`);
    }
    try {
      return super.verifyClientCredential(credential, now);
    } catch (error) {
      if (error instanceof UnknownSignerError) this.missing = domain;
      throw error;
    }
  }
}
