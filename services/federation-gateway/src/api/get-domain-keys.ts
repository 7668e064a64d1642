import type { federation } from "@phoenix/proto";
import { UnavailableError } from "@phoenix/runtime/errors";
import type { GatewayContext } from "./context.js";

/** GetDomainKeys: this domain's currently valid federation verifying keys (public). */
export async function getDomainKeys(
  ctx: GatewayContext,
  _request: federation.GetDomainKeysRequest,
): Promise<federation.GetDomainKeysResponse> {
  const keys = ctx.keys.published();
  if (keys.length === 0) throw new UnavailableError("federation keys are not loaded yet");
  return {
    domain: ctx.domain,
    keys: keys.map((k) => ({
      keyId: k.keyId,
      publicKey: k.publicKey,
      notBefore: k.notBefore,
      notAfter: k.notAfter,
    })),
  };
}
