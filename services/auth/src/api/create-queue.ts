import { type HpkePublicKey, randomBytes } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import { createConnectionQueue } from "../domain/connection-queue.js";
import { connectionQueueContext } from "../domain/ids.js";
import type { PackageOwner } from "../store/connection-packages.js";
import { insertQueue } from "../store/connection-queues.js";

/**
 * Creates the connection queue of a new client or handle (shared by RegisterUser, AddClient and
 * CreateHandle): message 0 carries the initial queue ratchet secret for the owner.
 */
export async function createQueueFor(
  tx: Database,
  owner: PackageOwner,
  encryptionKey: HpkePublicKey,
): Promise<void> {
  const created = createConnectionQueue(encryptionKey, connectionQueueContext(owner));
  await insertQueue(
    tx,
    owner,
    {
      queueId: randomBytes(16),
      encryptionKey: encryptionKey.bytes,
      ratchetState: created.ratchetState,
      nextSequence: created.nextSequence,
    },
    created.messages,
  );
}
