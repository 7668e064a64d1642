import type { queue } from "@phoenix/proto";
import { keyRing, type QueueContext } from "./context.js";

/** GetVerifyingKey: the verifying keys of the QS signing keys still valid. */
export async function getVerifyingKey(
  ctx: QueueContext,
  _request: queue.GetVerifyingKeyRequest,
): Promise<queue.GetVerifyingKeyResponse> {
  const ring = keyRing(ctx);
  const now = ctx.now();
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
