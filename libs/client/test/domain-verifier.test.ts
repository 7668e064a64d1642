// The client verifies each domain's users against that domain's AS credentials, fetched on demand.
import {
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  ClientCredential,
  ClientCredentialCsr,
  parseUuid,
  SigningKey,
} from "@phoenix/crypto";
import { describe, expect, it } from "vitest";
import { type DomainAsCredentials, DomainVerifier } from "../src/protocol/domain-verifier.js";

const DAY = 86_400_000;
const now = Date.now();

/** A domain's AS (root → intermediate) and a function issuing its users' client credentials. */
function domainPki(domain: string) {
  const rootKey = SigningKey.generate();
  const root = AsCredential.issue(rootKey, domain, { notBefore: now - DAY, notAfter: now + 365 * DAY });
  const newIntermediate = () => {
    const key = SigningKey.generate();
    const validity = { notBefore: now - DAY, notAfter: now + 30 * DAY };
    return {
      key,
      credential: AsIntermediateCredential.issue(
        rootKey,
        root,
        AsIntermediateCsr.create(key, domain, validity),
      ),
    };
  };
  const intermediate = newIntermediate();
  const answer = (intermediates = [intermediate.credential]): DomainAsCredentials => ({
    domain,
    asCredentials: [root.bytes],
    asIntermediateCredentials: intermediates.map((i) => i.bytes),
    revokedFingerprints: [],
  });
  const client = (signer = intermediate) =>
    ClientCredential.issue(
      signer.key,
      signer.credential,
      ClientCredentialCsr.create(
        SigningKey.generate(),
        {
          clientUuid: parseUuid(crypto.randomUUID()),
          userId: { uuid: parseUuid(crypto.randomUUID()), domain },
        },
        { notBefore: now - DAY, notAfter: now + 7 * DAY },
      ),
    );
  return { root, answer, client, newIntermediate };
}

describe("DomainVerifier", () => {
  it("verifies a user of another domain only once that domain's AS credentials are known", () => {
    const alpha = domainPki("alpha.example");
    const beta = domainPki("beta.example");
    const verifier = new DomainVerifier();
    verifier.learn(alpha.answer());
    const bob = beta.client();

    expect(() => verifier.verifyClientCredential(bob)).toThrow(/no AS credentials of beta\.example/);
    expect(verifier.missing).toBe("beta.example");

    verifier.learn(beta.answer());
    expect(verifier.verifyClientCredential(bob).clientId.userId.domain).toBe("beta.example");
    expect(verifier.verifyClientCredential(alpha.client()).clientId.userId.domain).toBe("alpha.example");
  });

  it("names the domain again when a credential comes from an intermediate it has not seen (rotation)", () => {
    const beta = domainPki("beta.example");
    const verifier = new DomainVerifier();
    verifier.learn(beta.answer());
    const rotated = beta.newIntermediate();
    const carol = beta.client(rotated);

    expect(() => verifier.verifyClientCredential(carol)).toThrow();
    expect(verifier.missing).toBe("beta.example");
    verifier.learn(beta.answer([rotated.credential]));
    expect(verifier.verifyClientCredential(carol).clientId.userId.domain).toBe("beta.example");
  });

  it("refuses relayed AS credentials whose root names another domain", () => {
    const alpha = domainPki("alpha.example");
    const verifier = new DomainVerifier();
    // An AS answering for beta with alpha's root: never trusted as beta's.
    expect(() => verifier.learn({ ...alpha.answer(), domain: "beta.example" })).toThrow(
      /AS credentials of beta\.example include one of alpha\.example/,
    );
    expect(verifier.knows("beta.example")).toBe(false);
    expect(verifier.knows("alpha.example")).toBe(false);
  });
});
