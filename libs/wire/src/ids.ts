import { UUID_LENGTH } from "@phoenix/crypto";
import type { common } from "@phoenix/proto";

/**
 * The MLS group id of a DS group: 16 uuid bytes ‖ UTF-8 domain. The DS creates groups under it
 * and members read it back, so a member can tell from an MLS message which DS group it belongs to.
 */
export function mlsGroupId(groupId: common.QualifiedGroupId): Uint8Array {
  const domain = new TextEncoder().encode(groupId.domain);
  const out = new Uint8Array(groupId.uuid.length + domain.length);
  out.set(groupId.uuid, 0);
  out.set(domain, groupId.uuid.length);
  return out;
}

/** The inverse of {@link mlsGroupId}. */
export function qualifiedGroupId(mlsId: Uint8Array): common.QualifiedGroupId {
  return { uuid: mlsId.slice(0, UUID_LENGTH), domain: new TextDecoder().decode(mlsId.slice(UUID_LENGTH)) };
}

/** Whose AS connection queue: a client's (by its two uuids) or a handle's (by its 32-byte hash). */
export type ConnectionQueueOwner =
  | { client: { clientUuid: Uint8Array; userUuid: Uint8Array } }
  | { handleHash: Uint8Array };

/**
 * The queue-ratchet context of a connection queue, bound into every message so a ciphertext of
 * one queue never decrypts as one of another: client uuid ‖ user uuid for a client's queue, the
 * 32-byte handle hash for a handle's queue. Both sides know it without asking the AS.
 */
export function connectionQueueContext(owner: ConnectionQueueOwner): Uint8Array {
  if ("handleHash" in owner) return owner.handleHash.slice();
  const out = new Uint8Array(UUID_LENGTH * 2);
  out.set(owner.client.clientUuid, 0);
  out.set(owner.client.userUuid, UUID_LENGTH);
  return out;
}
