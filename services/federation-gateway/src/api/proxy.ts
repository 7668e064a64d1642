import { status as grpcStatus } from "@grpc/grpc-js";
import { isValidDomain } from "@phoenix/crypto";
import { federation, rpcLabel } from "@phoenix/proto";
import type { CallContext } from "@phoenix/runtime/grpc";
import { MalformedFederationRequestError } from "../domain/errors.js";
import { signFederationRequest } from "../domain/signing.js";
import { NoSigningKeyError } from "../outbound/peer-sender.js";
import type { GatewayContext } from "./context.js";
import { checkForwardable } from "./forward.js";
import { passthrough } from "./translate-error.js";

const FORWARD_LABEL = rpcLabel(federation.FederationServiceService.forward);

/**
 * Proxy (internal): a local service forwards a client's request to `destination_domain`. The
 * gateway signs a Forward with this domain's key, sends it to the peer's gateway and returns the
 * peer's answer — response bytes, or its status unchanged. The caller's deadline carries over.
 */
export async function proxy(
  ctx: GatewayContext,
  request: federation.ProxyRequest,
  call: CallContext,
): Promise<federation.ProxyResponse> {
  const destination = request.destinationDomain;
  if (!isValidDomain(destination))
    throw new MalformedFederationRequestError("destination_domain is malformed");
  if (destination === ctx.domain) {
    throw new MalformedFederationRequestError(
      "destination_domain is this homeserver: call the service directly",
    );
  }
  checkForwardable(ctx, request.method, (message) => new MalformedFederationRequestError(message));
  try {
    ctx.policy.check(destination);
  } catch (error) {
    ctx.activity.outboundFailed(destination);
    throw error;
  }
  const key = ctx.keys.active();
  if (key === undefined) throw new NoSigningKeyError("no active federation signing key");
  const signed = await signFederationRequest(
    federation.ForwardTbs,
    FORWARD_LABEL,
    ctx.domain,
    key.signingKey,
    {
      destinationDomain: destination,
      method: request.method,
      request: request.request,
    },
  );
  const client = await ctx.peers.get(destination);
  try {
    const answer = await client.forward({ signed }, { parent: call, deadlineMs: ctx.proxyTimeoutMs });
    ctx.activity.outbound(destination);
    return { response: answer.response };
  } catch (error) {
    const status = passthrough(error);
    // The peer's own answer (a status of its service) is a contact; no answer is a failure.
    const unreached =
      status === undefined ||
      status.code === grpcStatus.UNAVAILABLE ||
      status.code === grpcStatus.DEADLINE_EXCEEDED;
    if (unreached) ctx.activity.outboundFailed(destination);
    else ctx.activity.outbound(destination);
    throw status ?? error;
  }
}
