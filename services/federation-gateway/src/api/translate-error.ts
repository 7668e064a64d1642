import type { Metadata } from "@grpc/grpc-js";
import { CryptoError, classifyCryptoError } from "@phoenix/crypto";
import {
  decodeRichStatus,
  InvalidArgumentError,
  PassthroughStatusError,
  PermissionDeniedError,
  ResourceExhaustedError,
  RpcError,
  STATUS_DETAILS_KEY,
  type StatusDetail,
  UnauthenticatedError,
  UnavailableError,
} from "@phoenix/runtime/errors";
import {
  FederationAuthError,
  FederationConfigError,
  ForeignRecipientReportError,
  MalformedFederationRequestError,
  PeerCertificateMismatchError,
  PeerDiscoveryError,
  PeerRateLimitedError,
  PeerRefusedError,
} from "../domain/errors.js";
import { NoSigningKeyError } from "../outbound/peer-sender.js";
import { isServiceError } from "../outbound/upstream.js";

function detailsOf(metadata: Metadata | undefined): StatusDetail[] {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(raw instanceof Uint8Array)) return [];
  try {
    return [...decodeRichStatus(raw).details];
  } catch {
    return [];
  }
}

/** The status of a failed gRPC call, unchanged. */
export function passthrough(error: unknown): PassthroughStatusError | undefined {
  if (!isServiceError(error)) return undefined;
  const message = (error as { statusMessage?: string }).statusMessage ?? error.details;
  return new PassthroughStatusError(error.code, message, detailsOf(error.metadata));
}

/** THE mapping of the gateway's domain errors to gRPC status (installed as `translateError`). */
export function translateGatewayError(error: unknown): RpcError | undefined {
  if (error instanceof RpcError) return error;
  if (error instanceof PeerRefusedError) return new PermissionDeniedError(error.message);
  if (error instanceof ForeignRecipientReportError) return new PermissionDeniedError(error.message);
  if (error instanceof PeerCertificateMismatchError) return new PermissionDeniedError(error.message);
  if (error instanceof PeerRateLimitedError) return new ResourceExhaustedError(error.message);
  if (error instanceof FederationAuthError) return new UnauthenticatedError(error.message);
  if (error instanceof MalformedFederationRequestError) return new InvalidArgumentError(error.message);
  if (error instanceof PeerDiscoveryError) return new UnavailableError(error.message);
  if (error instanceof NoSigningKeyError || error instanceof FederationConfigError) {
    return new UnavailableError(error.message);
  }
  if (error instanceof CryptoError) {
    const category = classifyCryptoError(error);
    if (category === "unauthenticated") return new UnauthenticatedError(error.message);
    if (category === "invalid-argument") return new InvalidArgumentError(error.message);
  }
  return passthrough(error);
}
