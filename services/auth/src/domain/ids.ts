import { type ClientId, isValidDomain, type UserId, UUID_LENGTH } from "@phoenix/crypto";
import type { common } from "@phoenix/proto";
import { malformed } from "./errors.js";

/** A user of this AS, by the uuid bytes of its UserId (the domain is always the AS's own). */
export type UserKey = Uint8Array;

/** A client of this AS: the two uuids that identify it inside the AS database. */
export interface ClientKey {
  userUuid: Uint8Array;
  clientUuid: Uint8Array;
}

/** Validates a wire UserId (16-byte uuid, lower-case DNS domain); `field` names it in errors. */
export function parseUserId(id: common.UserId | undefined, field: string): UserId {
  if (!id) throw malformed(field, "missing");
  if (id.uuid.length !== UUID_LENGTH) throw malformed(`${field}.uuid`, `must be ${UUID_LENGTH} bytes`);
  if (!isValidDomain(id.domain)) throw malformed(`${field}.domain`, "must be a lower-case DNS name");
  return { uuid: id.uuid, domain: id.domain };
}

/** Validates a wire ClientId. */
export function parseClientId(id: common.ClientId | undefined, field: string): ClientId {
  if (!id) throw malformed(field, "missing");
  const userId = parseUserId(id.user, `${field}.user`);
  if (id.clientUuid.length !== UUID_LENGTH) {
    throw malformed(`${field}.client_uuid`, `must be ${UUID_LENGTH} bytes`);
  }
  return { clientUuid: id.clientUuid, userId };
}

/** The wire form of a client id. */
export function toWireClientId(id: ClientId): common.ClientId {
  return { user: { uuid: id.userId.uuid, domain: id.userId.domain }, clientUuid: id.clientUuid };
}

/**
 * The `domain` field of a public request, validated: empty (this AS) or a lower-case DNS name.
 * Another domain's request is forwarded through the federation gateway (see service.ts).
 */
export function requestDomain(domain: string, field: string): string {
  if (domain !== "" && !isValidDomain(domain)) throw malformed(field, "must be a lower-case DNS name");
  return domain;
}

/** Validates a 32-byte handle hash. */
export function parseHandleHash(hash: Uint8Array, field: string): Uint8Array {
  if (hash.length !== 32) throw malformed(field, "must be 32 bytes");
  return hash;
}

/** The queue-ratchet context of a connection queue; the client computes the same (one encoding). */
export { connectionQueueContext } from "@phoenix/wire";
