import { randomBytes } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import { activityMonth, ID_LENGTH } from "../domain/limits.js";
import { pushTokenAtRest } from "../domain/push-token.js";
import { keyUpdateStamp, newQueue } from "../domain/queue-ratchet.js";
import { insertClient } from "../store/records-store.js";
import { keyRing, type QsDeps } from "./deps.js";

/** What a new client record is made of (validated request fields). */
export interface ClientRecordInput {
  clientRecordAuthKey: Uint8Array;
  queueEncryptionKey: Uint8Array;
  sealedPushToken: Uint8Array;
}

/** A fresh client id and the at-rest push token, computed before any transaction. */
export function prepareClientRecord(deps: QsDeps, input: ClientRecordInput, field: string) {
  const clientId = randomBytes(ID_LENGTH);
  const ring = keyRing(deps);
  const pushToken = pushTokenAtRest(
    deps.storage,
    ring.usableConfigKeys(deps.now()),
    input.sealedPushToken,
    clientId,
    field,
    deps.webhookPolicy,
  );
  const queue = newQueue(deps.storage, clientId, input.queueEncryptionKey);
  return { clientId, pushToken, queue };
}

/** Inserts a prepared client record with its queue (whose first message is the ratchet Init). */
export async function storeClientRecord(
  deps: QsDeps,
  tx: Database,
  userId: Uint8Array,
  input: ClientRecordInput,
  prepared: ReturnType<typeof prepareClientRecord>,
): Promise<void> {
  const now = deps.now();
  await insertClient(
    tx,
    {
      clientId: prepared.clientId,
      userId,
      authKey: input.clientRecordAuthKey,
      queueKey: input.queueEncryptionKey,
      encryptedRatchet: prepared.queue.encryptedRatchet,
      nextSeq: prepared.queue.nextSeq,
      lastKeyUpdateAt: keyUpdateStamp(deps.ratchetPolicy, now),
      keyUpdateDue: false,
      encryptedPushToken: prepared.pushToken,
      lastActiveAt: activityMonth(now),
    },
    prepared.queue.initMessage,
  );
}
