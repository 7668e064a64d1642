import { bytesEqual, handleHash, VerifyingKey } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { AlreadyExistsError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { authenticateSignedRequest } from "@phoenix/runtime/signed-request";
import type { AuthContext } from "../context.js";
import { hourCeil } from "../domain/coarse-time.js";
import { parseQueueEncryptionKey } from "../domain/connection-queue.js";
import { checking, malformed } from "../domain/errors.js";
import { validateHandle } from "../domain/handles.js";
import { parseHandleHash } from "../domain/ids.js";
import { checkSenderKind } from "../domain/request-header.js";
import { deleteExpiredHandle, insertHandle } from "../store/handles.js";
import { replayScope, requestPolicy } from "./authenticate.js";
import { createQueueFor } from "./create-queue.js";
import { limitCaller } from "./rate-limit.js";

/**
 * CreateHandle: checks the plaintext handle and that it hashes to `handle_hash`, then keeps only
 * the hash, the handle's key, an expiry and a new connection queue. An expired registration of
 * the same handle is dropped (with its queue and packages) and the handle taken again.
 */
export async function createHandle(
  ctx: AuthContext,
  request: auth.CreateHandleRequest,
  call: CallContext,
): Promise<auth.CreateHandleResponse> {
  await limitCaller(ctx, ctx.limits.createHandle, call);
  const now = ctx.now();
  const { tbs, signer, claim } = await authenticateSignedRequest(
    requestPolicy(ctx, now),
    { signed: request.signed, type: auth.CreateHandleTbs, method: auth.AuthServiceService.createHandle },
    (tbs, header) => {
      checkSenderKind(header, "handleHash");
      validateHandle(tbs.handle);
      const hash = parseHandleHash(tbs.handleHash, "tbs.handle_hash");
      const sender = header.sender;
      if (sender?.$case !== "handleHash" || !bytesEqual(sender.value, hash)) {
        throw malformed("tbs.header.sender", "must be the handle hash of the request");
      }
      if (tbs.verifyingKey.length !== 32)
        throw malformed("tbs.verifying_key", "must be a 32-byte Ed25519 public key");
      // The new handle key proves itself: it signs the request that registers it.
      const verifyingKey = checking("tbs.verifying_key", () => VerifyingKey.fromBytes(tbs.verifyingKey));
      return {
        signer: "handle",
        key: [verifyingKey],
        replayScope: replayScope("handleHash", hash),
        hash,
        verifyingKey,
      };
    },
  );
  const { hash, verifyingKey } = signer;
  const queueKey = parseQueueEncryptionKey(
    tbs.connectionQueueEncryptionKey,
    "tbs.connection_queue_encryption_key",
  );
  // The memory-hard HandleHash (≈40 ms of CPU) runs last, on an otherwise valid request.
  if (!bytesEqual(handleHash(tbs.handle), hash))
    throw malformed("tbs.handle_hash", "is not the hash of tbs.handle");
  const expiresAt = hourCeil(now + ctx.config.AS_HANDLE_LIFETIME);

  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await deleteExpiredHandle(tx, hash, now);
    const inserted = await insertHandle(tx, {
      handleHash: hash,
      verifyingKey: verifyingKey.bytes,
      expiresAt,
    });
    if (!inserted) throw new AlreadyExistsError("the handle is taken");
    await createQueueFor(tx, { handleHash: hash }, queueKey);
  });
  return { expiresAt };
}
