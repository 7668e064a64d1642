import { randomBytes } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import { activityMonth, ID_LENGTH } from "../domain/limits.js";
import { pushTokenAtRest } from "../domain/push-token.js";
import { keyUpdateStamp, newQueue } from "../domain/queue-ratchet.js";
import { insertClient } from "../store/clients.js";
import { keyRing, type QueueContext } from "./context.js";

/** What a new client record is made of (validated request fields). */
export interface ClientRecordInput {
  clientRecordAuthKey: Uint8Array;
  queueEncryptionKey: Uint8Array;
  sealedPushToken: Uint8Array;
}

/** A fresh client id and the at-rest push token, computed before any transaction. */
export function prepareClientRecord(ctx: QueueContext, input: ClientRecordInput, field: string) {
  const clientId = randomBytes(ID_LENGTH);
  const ring = keyRing(ctx);
  const pushToken = pushTokenAtRest(
    ctx.storage,
    ring.usableConfigKeys(ctx.now()),
    input.sealedPushToken,
    clientId,
    field,
    ctx.webhookPolicy,
  );
  const queue = newQueue(ctx.storage, clientId, input.queueEncryptionKey);
  return { clientId, pushToken, queue };
}

/** Inserts a prepared client record with its queue (whose first message is the ratchet Init). */
export async function storeClientRecord(
  ctx: QueueContext,
  tx: Database,
  userId: Uint8Array,
  input: ClientRecordInput,
  prepared: ReturnType<typeof prepareClientRecord>,
): Promise<void> {
  const now = ctx.now();
  await insertClient(
    tx,
    {
      clientId: prepared.clientId,
      userId,
      authKey: input.clientRecordAuthKey,
      queueKey: input.queueEncryptionKey,
      encryptedRatchet: prepared.queue.encryptedRatchet,
      nextSeq: prepared.queue.nextSeq,
      lastKeyUpdateAt: keyUpdateStamp(ctx.ratchetPolicy, now),
      keyUpdateDue: false,
      encryptedPushToken: prepared.pushToken,
      lastActiveAt: activityMonth(now),
    },
    prepared.queue.initMessage,
  );
}
