import { isValidDomain } from "@phoenix/crypto";
import { federation, rpcLabel } from "@phoenix/proto";
import type { CallContext } from "@phoenix/runtime/grpc";
import { MalformedFederationRequestError } from "../domain/errors.js";
import { signFederationRequest } from "../domain/signing.js";
import { NoSigningKeyError } from "../outbound/peer-sender.js";
import type { GatewayDeps } from "./deps.js";
import { checkForwardable } from "./forward.js";
import { passthrough } from "./translate-error.js";

const FORWARD_LABEL = rpcLabel(federation.FederationServiceService.forward);

/**
 * Proxy (internal): a local service forwards a client's request to `destination_domain`. The
 * gateway signs a Forward with this domain's key, sends it to the peer's gateway and returns the
 * peer's answer — response bytes, or its status unchanged. The caller's deadline carries over.
 */
export async function proxy(
  deps: GatewayDeps,
  request: federation.ProxyRequest,
  ctx: CallContext,
): Promise<federation.ProxyResponse> {
  const destination = request.destinationDomain;
  if (!isValidDomain(destination))
    throw new MalformedFederationRequestError("destination_domain is malformed");
  if (destination === deps.domain) {
    throw new MalformedFederationRequestError(
      "destination_domain is this homeserver: call the service directly",
    );
  }
  checkForwardable(deps, request.method, (message) => new MalformedFederationRequestError(message));
  deps.policy.check(destination);
  const key = deps.keys.active();
  if (key === undefined) throw new NoSigningKeyError("no active federation signing key");
  const signed = await signFederationRequest(
    federation.ForwardTbs,
    FORWARD_LABEL,
    deps.domain,
    key.signingKey,
    {
      destinationDomain: destination,
      method: request.method,
      request: request.request,
    },
  );
  const client = await deps.peers.get(destination);
  try {
    const answer = await client.forward({ signed }, { parent: ctx, deadlineMs: deps.proxyTimeoutMs });
    return { response: answer.response };
  } catch (error) {
    throw passthrough(error) ?? error;
  }
}
