import type { queue } from "@phoenix/proto";
import { keyRing, type QsDeps } from "./deps.js";

/** GetQueueConfigEncryptionKey: every key configs may still be sealed to, the current one marked. */
export async function getQueueConfigEncryptionKey(
  deps: QsDeps,
  _request: queue.GetQueueConfigEncryptionKeyRequest,
): Promise<queue.GetQueueConfigEncryptionKeyResponse> {
  const ring = keyRing(deps);
  return {
    keys: ring.usableConfigKeys(deps.now()).map((k) => ({
      keyId: k.keyId,
      publicKey: k.pair.publicKey.bytes,
      notAfter: k.notAfter ?? undefined,
      current: k.notAfter === null,
    })),
  };
}
