import type { queue } from "@phoenix/proto";
import { keyRing, type QueueContext } from "./context.js";

/** GetQueueConfigEncryptionKey: every key configs may still be sealed to, the current one marked. */
export async function getQueueConfigEncryptionKey(
  ctx: QueueContext,
  _request: queue.GetQueueConfigEncryptionKeyRequest,
): Promise<queue.GetQueueConfigEncryptionKeyResponse> {
  const ring = keyRing(ctx);
  return {
    keys: ring.usableConfigKeys(ctx.now()).map((k) => ({
      keyId: k.keyId,
      publicKey: k.pair.publicKey.bytes,
      notAfter: k.notAfter ?? undefined,
      current: k.notAfter === null,
    })),
  };
}
