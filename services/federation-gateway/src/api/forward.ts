import { federation, rpcLabel } from "@phoenix/proto";
import { PermissionDeniedError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { MalformedFederationRequestError } from "../domain/errors.js";
import type { GatewayDeps } from "./deps.js";

const LABEL = rpcLabel(federation.FederationServiceService.forward);

/** Refuses methods that are unknown or whose rpc_policy is not `federated`. */
export function checkForwardable(
  deps: GatewayDeps,
  method: string,
  notFederated: (message: string) => Error,
): void {
  if (!deps.known.has(method)) throw new MalformedFederationRequestError(`unknown method ${method}`);
  if (!deps.federated.has(method)) throw notFederated(`${method} cannot be reached through federation`);
}

/**
 * Forward: a peer forwards its client's request for one of our services. After the federation
 * signature, the client's request bytes go unchanged to the local AS/DS/QS (whose own
 * authentication then checks the client's signature), and its answer — response bytes or status —
 * comes back unchanged.
 */
export async function forward(
  deps: GatewayDeps,
  request: federation.ForwardRequest,
  ctx: CallContext,
): Promise<federation.ForwardResponse> {
  const { tbs, sender } = await deps.auth.authenticate(federation.ForwardTbs, request.signed, LABEL, ctx);
  if (tbs.destinationDomain !== deps.domain) {
    throw new MalformedFederationRequestError(
      `request is addressed to ${tbs.destinationDomain}, not ${deps.domain}`,
    );
  }
  checkForwardable(deps, tbs.method, (message) => new PermissionDeniedError(message));
  const response = await deps.upstream.call(tbs.method, tbs.request, sender, ctx);
  return { response };
}
