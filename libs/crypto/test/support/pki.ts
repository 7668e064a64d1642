import {
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  ClientCredential,
  ClientCredentialCsr,
  type ClientId,
  CredentialVerifier,
  parseUuid,
  SigningKey,
} from "../../src/index.js";

export const NOW = Date.UTC(2030, 0, 1);
export const DAY = 86_400_000;

/** A test PKI for one domain: root → intermediate → one client. */
export function makePki(domain = "alpha.example", seed = 1) {
  const rootKey = SigningKey.fromSeed(new Uint8Array(32).fill(seed));
  const root = AsCredential.issue(rootKey, domain, { notBefore: NOW - DAY, notAfter: NOW + 3650 * DAY });
  const intermediateKey = SigningKey.fromSeed(new Uint8Array(32).fill(seed + 1));
  const intermediate = AsIntermediateCredential.issue(
    rootKey,
    root,
    AsIntermediateCsr.create(intermediateKey, domain, { notBefore: NOW - DAY, notAfter: NOW + 365 * DAY }),
  );
  const client = makeClient(intermediateKey, intermediate, domain, seed + 2);
  const verifier = new CredentialVerifier({ now: () => NOW });
  verifier.addRoot(root);
  verifier.addIntermediate(intermediate);
  return { rootKey, root, intermediateKey, intermediate, ...client, verifier };
}

export function makeClient(
  intermediateKey: SigningKey,
  intermediate: AsIntermediateCredential,
  domain: string,
  seed: number,
  validity = { notBefore: NOW - DAY, notAfter: NOW + 30 * DAY },
) {
  const clientKey = SigningKey.fromSeed(new Uint8Array(32).fill(seed));
  const clientId: ClientId = {
    clientUuid: parseUuid("0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"),
    userId: { uuid: parseUuid("11111111-2222-4333-8444-555555555555"), domain },
  };
  const clientCredential = ClientCredential.issue(
    intermediateKey,
    intermediate,
    ClientCredentialCsr.create(clientKey, clientId, validity),
  );
  return { clientKey, clientId, clientCredential };
}
