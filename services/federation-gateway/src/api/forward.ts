import { federation, rpcLabel } from "@phoenix/proto";
import { PermissionDeniedError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { MalformedFederationRequestError } from "../domain/errors.js";
import type { GatewayContext } from "./context.js";

const LABEL = rpcLabel(federation.FederationServiceService.forward);

/** Refuses methods that are unknown or whose rpc_policy is not `federated`. */
export function checkForwardable(
  ctx: GatewayContext,
  method: string,
  notFederated: (message: string) => Error,
): void {
  if (!ctx.known.has(method)) throw new MalformedFederationRequestError(`unknown method ${method}`);
  if (!ctx.federated.has(method)) throw notFederated(`${method} cannot be reached through federation`);
}

/**
 * Forward: a peer forwards its client's request for one of our services. After the federation
 * signature, the client's request bytes go unchanged to the local AS/DS/QS (whose own
 * authentication then checks the client's signature), and its answer — response bytes or status —
 * comes back unchanged.
 */
export async function forward(
  ctx: GatewayContext,
  request: federation.ForwardRequest,
  call: CallContext,
): Promise<federation.ForwardResponse> {
  const { tbs, sender } = await ctx.auth.authenticate(federation.ForwardTbs, request.signed, LABEL, call);
  if (tbs.destinationDomain !== ctx.domain) {
    throw new MalformedFederationRequestError(
      `request is addressed to ${tbs.destinationDomain}, not ${ctx.domain}`,
    );
  }
  checkForwardable(ctx, tbs.method, (message) => new PermissionDeniedError(message));
  const response = await ctx.upstream.call(tbs.method, tbs.request, sender, call);
  return { response };
}
