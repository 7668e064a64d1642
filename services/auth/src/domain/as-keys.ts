import { AsCredential, AsIntermediateCredential, AsIntermediateCsr, SigningKey } from "@phoenix/crypto";

/** How the AS manages its credentials (from the AS_* configuration). */
export interface AsKeyPolicy {
  rootLifetimeMs: number;
  intermediateLifetimeMs: number;
  /** A new intermediate is made once the current one is this old. */
  rotateAfterMs: number;
  /** Longest client credential validity; the signing intermediate must outlive it. */
  clientMaxLifetimeMs: number;
}

/** A credential with the key that signs with it. */
export interface KeyedCredential<C> {
  key: SigningKey;
  credential: C;
}

/** The configured AS root is unusable (bad encoding, wrong key, other domain, expired). */
export class AsKeyConfigError extends Error {
  override readonly name = "AsKeyConfigError";
}

/**
 * How far back a new AS credential's validity starts, so CSRs from clients whose clocks run a
 * little behind still fall inside the signer's validity.
 */
export const BACKDATE_MS = 3_600_000;

/** Creates a self-signed root credential for `domain`. */
export function issueRoot(domain: string, now: number, policy: AsKeyPolicy): KeyedCredential<AsCredential> {
  const key = SigningKey.generate();
  const expiration = { notBefore: now - BACKDATE_MS, notAfter: now + policy.rootLifetimeMs };
  return { key, credential: AsCredential.issue(key, domain, expiration) };
}

/** Creates an intermediate signed by `root`, valid for its lifetime but never beyond the root. */
export function issueIntermediate(
  root: KeyedCredential<AsCredential>,
  now: number,
  policy: AsKeyPolicy,
): KeyedCredential<AsIntermediateCredential> {
  const key = SigningKey.generate();
  const notAfter = Math.min(now + policy.intermediateLifetimeMs, root.credential.expiration.notAfter);
  const notBefore = Math.max(now - BACKDATE_MS, root.credential.expiration.notBefore);
  const csr = AsIntermediateCsr.create(key, root.credential.domain, { notBefore, notAfter });
  return { key, credential: AsIntermediateCredential.issue(root.key, root.credential, csr) };
}

/**
 * True while a credential may still sign: younger than `rotateAfterMs` (rotation) and valid long
 * enough to cover the longest client credential it may sign (`minRemainingMs`).
 */
export function isFreshSigner(
  credential: { createdAt: number; notAfter: number },
  now: number,
  rotateAfterMs: number,
  minRemainingMs: number,
): boolean {
  return now - credential.createdAt < rotateAfterMs && credential.notAfter - now >= minRemainingMs;
}

/** Decodes key material given as hex or base64 (configuration secrets). */
export function decodeKeyText(text: string, what: string): Uint8Array {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length % 2 === 0)
    return new Uint8Array(Buffer.from(trimmed, "hex"));
  if (/^[A-Za-z0-9+/_-]+=*$/.test(trimmed)) return new Uint8Array(Buffer.from(trimmed, "base64"));
  throw new AsKeyConfigError(`${what} is neither hex nor base64`);
}

/**
 * Reads the operator's root (AS_ROOT_SIGNING_KEY seed + AS_ROOT_CREDENTIAL) and checks that they
 * belong together, to this domain, and are valid now.
 */
export function parseConfiguredRoot(
  seedText: string,
  credentialText: string,
  domain: string,
  now: number,
): KeyedCredential<AsCredential> {
  const seed = decodeKeyText(seedText, "AS_ROOT_SIGNING_KEY");
  if (seed.length !== 32) throw new AsKeyConfigError("AS_ROOT_SIGNING_KEY must be a 32-byte Ed25519 seed");
  const key = SigningKey.fromSeed(seed);
  let credential: AsCredential;
  try {
    credential = AsCredential.decode(decodeKeyText(credentialText, "AS_ROOT_CREDENTIAL"));
    credential.verifySelfSignature();
  } catch (error) {
    throw new AsKeyConfigError(
      `AS_ROOT_CREDENTIAL is not a valid AS credential: ${(error as Error).message}`,
    );
  }
  if (!credential.verifyingKey.equals(key.verifyingKey)) {
    throw new AsKeyConfigError("AS_ROOT_CREDENTIAL does not belong to AS_ROOT_SIGNING_KEY");
  }
  if (credential.domain !== domain) {
    throw new AsKeyConfigError(`AS_ROOT_CREDENTIAL is for ${credential.domain}, not ${domain}`);
  }
  if (credential.expiration.notAfter <= now) throw new AsKeyConfigError("AS_ROOT_CREDENTIAL has expired");
  return { key, credential };
}
