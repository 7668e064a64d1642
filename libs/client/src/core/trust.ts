// Which AS credentials this client trusts: its own homeserver's, and other domains' fetched
// through its own AS when a credential of theirs first needs verifying.

import { DomainVerifier } from "../protocol/domain-verifier.js";
import type { Transport } from "../transport.js";

/** A verifier trusting the AS credentials of the transport's own homeserver (domain `""`). */
export async function fetchVerifier(transport: Transport): Promise<DomainVerifier> {
  const verifier = new DomainVerifier();
  verifier.learn(await transport.auth.getAsCredentials({ domain: "" }));
  return verifier;
}

/** The domain verifier and how it learns the AS credentials of domains it does not know yet. */
export class CredentialTrust {
  constructor(
    private readonly transport: Transport,
    readonly verifier: DomainVerifier,
  ) {}

  /**
   * Trusts `domain`'s AS credentials, fetched through this client's own AS (which relays other
   * domains' credentials); skipped when already known unless `refresh`.
   */
  async learnCredentials(domain: string, refresh = false): Promise<void> {
    if (!refresh && this.verifier.knows(domain)) return;
    const answer = await this.transport.auth.getAsCredentials({ domain });
    if (answer.domain !== domain)
      throw new Error(`asked for the AS credentials of ${domain}, got those of ${answer.domain}`);
    this.verifier.learn(answer);
  }

  /**
   * Runs `fn`; when it fails because a credential's domain has no (or no current) AS credentials
   * in the verifier, fetches them and runs `fn` again — at most once per domain. `fn` must leave
   * nothing behind when it throws (verify before writing, or write in one store transaction).
   */
  async withCredentials<T>(fn: () => T | Promise<T>): Promise<T> {
    const fetched = new Set<string>();
    for (;;) {
      this.verifier.missing = undefined;
      try {
        return await fn();
      } catch (error) {
        const domain = this.verifier.missing;
        if (domain === undefined || fetched.has(domain)) throw error;
        fetched.add(domain);
        await this.learnCredentials(domain, true);
      }
    }
  }

  /**
   * Makes sure a client credential of `domain` will verify: learns the domain's AS credentials,
   * and fetches them again when the credential chains to an intermediate newer than those known.
   */
  async learnCredentialsFor(domain: string, verify: () => void): Promise<void> {
    await this.learnCredentials(domain);
    this.verifier.missing = undefined;
    try {
      verify();
    } catch {
      if (this.verifier.missing === domain) await this.learnCredentials(domain, true);
    }
  }
}
