import type { federation } from "@phoenix/proto";
import { UnavailableError } from "@phoenix/runtime/errors";
import type { GatewayDeps } from "./deps.js";

/** GetDomainKeys: this domain's currently valid federation verifying keys (public). */
export async function getDomainKeys(deps: GatewayDeps): Promise<federation.GetDomainKeysResponse> {
  const keys = deps.keys.published();
  if (keys.length === 0) throw new UnavailableError("federation keys are not loaded yet");
  return {
    domain: deps.domain,
    keys: keys.map((k) => ({
      keyId: k.keyId,
      publicKey: k.publicKey,
      notBefore: k.notBefore,
      notAfter: k.notAfter,
    })),
  };
}
