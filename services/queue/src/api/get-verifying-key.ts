import type { queue } from "@phoenix/proto";
import { keyRing, type QsDeps } from "./deps.js";

/** GetVerifyingKey: the verifying keys of the QS signing keys still valid. */
export async function getVerifyingKey(
  deps: QsDeps,
  _request: queue.GetVerifyingKeyRequest,
): Promise<queue.GetVerifyingKeyResponse> {
  const ring = keyRing(deps);
  const now = deps.now();
  return {
    keys: ring.signingKeys
      .filter((k) => k.notAfter === null || k.notAfter.getTime() > now)
      .map((k) => ({
        keyId: k.keyId,
        publicKey: k.key.publicKey,
        notBefore: k.notBefore,
        notAfter: k.notAfter ?? undefined,
      })),
  };
}
