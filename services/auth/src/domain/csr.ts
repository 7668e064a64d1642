import {
  type AsIntermediateCredential,
  ClientCredential,
  ClientCredentialCsr,
  type SigningKey,
} from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import { checking, malformed, tooLarge } from "./errors.js";
import { Limits } from "./limits.js";

const Reason = common.ErrorReason;

/**
 * How far back a CSR's validity may start. Clients round the start down to the hour (the
 * credential is stored by the AS, and an exact start would be the moment of registration, which
 * links the user to its QS records), so a start up to an hour ago plus clock skew is normal.
 */
const CSR_MAX_BACKDATE_MS = 2 * 3_600_000;

/** Bounds the AS puts on what a CSR may ask for. */
export interface CsrPolicy {
  domain: string;
  clientMaxLifetimeMs: number;
  /** Allowed clock skew of the CSR's notBefore. */
  maxFutureSkewMs: number;
}

/**
 * Decodes and checks a client CSR: size, structure, proof of possession (a bad self-signature is
 * UNAUTHENTICATED, per the contract), this AS's domain, and a validity period that starts now-ish
 * and is not longer than the AS allows.
 */
export function checkClientCsr(
  bytes: Uint8Array,
  field: string,
  policy: CsrPolicy,
  now: number,
): ClientCredentialCsr {
  if (bytes.length === 0) throw malformed(field, "missing");
  if (bytes.length > Limits.clientCsr) throw tooLarge(field, Limits.clientCsr, bytes.length);
  const csr = checking(field, () => ClientCredentialCsr.decode(bytes));
  checking(field, () => csr.verifySelfSignature());
  const domain = csr.clientId.userId.domain;
  if (domain !== policy.domain) {
    throw malformed(
      field,
      `the CSR is for ${domain}, this AS serves ${policy.domain}`,
      Reason.ERROR_REASON_WRONG_DOMAIN,
    );
  }
  const { notBefore, notAfter } = csr.expiration;
  if (notBefore > now + policy.maxFutureSkewMs)
    throw malformed(`${field}.expiration`, "starts in the future");
  if (notBefore < now - CSR_MAX_BACKDATE_MS)
    throw malformed(`${field}.expiration`, "starts more than two hours ago");
  if (notAfter <= now) throw malformed(`${field}.expiration`, "already expired");
  if (notAfter - now > policy.clientMaxLifetimeMs) {
    throw malformed(
      `${field}.expiration`,
      `validity ends more than ${Math.floor(policy.clientMaxLifetimeMs / 3_600_000)} h from now`,
    );
  }
  return csr;
}

/** Signs a checked CSR with the current AS intermediate. */
export function signClientCredential(
  csr: ClientCredentialCsr,
  signer: { key: SigningKey; credential: AsIntermediateCredential },
  field: string,
): ClientCredential {
  return checking(field, () => ClientCredential.issue(signer.key, signer.credential, csr));
}
