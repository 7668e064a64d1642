import { fromHex, toHex } from "../bytes.js";
import type { Reader, Writer } from "../codec.js";
import { InvalidInputError } from "../errors.js";

/** Length of a uuid in its binary form. */
export const UUID_LENGTH = 16;
const MAX_DOMAIN = 253;
const DOMAIN_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A user: `uuid@domain`. */
export interface UserId {
  uuid: Uint8Array;
  domain: string;
}

/** A client of a user: client uuid plus the user id. */
export interface ClientId {
  clientUuid: Uint8Array;
  userId: UserId;
}

/** True for a lower-case DNS name (the form domains take in ids and credentials). */
export function isValidDomain(domain: string): boolean {
  return DOMAIN_RE.test(domain);
}

/** Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into 16 bytes. */
export function parseUuid(text: string): Uint8Array {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) {
    throw new InvalidInputError(`not a uuid: ${text}`);
  }
  return fromHex(text.replaceAll("-", ""));
}

/** Formats 16 bytes as a lower-case uuid string. */
export function formatUuid(bytes: Uint8Array): string {
  if (bytes.length !== UUID_LENGTH) throw new InvalidInputError("uuid must be 16 bytes");
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `uuid@domain`. */
export function formatUserId(id: UserId): string {
  return `${formatUuid(id.uuid)}@${id.domain}`;
}

/** Parses `uuid@domain`. */
export function parseUserId(text: string): UserId {
  const at = text.indexOf("@");
  if (at < 0) throw new InvalidInputError(`not a user id: ${text}`);
  const domain = text.slice(at + 1);
  if (!isValidDomain(domain)) throw new InvalidInputError(`invalid domain: ${domain}`);
  return { uuid: parseUuid(text.slice(0, at)), domain };
}

/** `clientUuid:uuid@domain` (display and logs). */
export function formatClientId(id: ClientId): string {
  return `${formatUuid(id.clientUuid)}:${formatUserId(id.userId)}`;
}

/** Writes a domain (u8-length-prefixed ASCII). */
export function writeDomain(w: Writer, domain: string, field = "domain"): void {
  if (!isValidDomain(domain)) throw new InvalidInputError(`invalid domain: ${domain}`);
  w.str(domain, 1, field, { min: 1, max: MAX_DOMAIN });
}

/** Reads and validates a domain. */
export function readDomain(r: Reader, field = "domain"): string {
  const domain = r.str(field, 1, { min: 1, max: MAX_DOMAIN });
  if (!isValidDomain(domain)) r.fail(field, "not a lower-case DNS name");
  return domain;
}

/** Writes a user id: uuid (16) ‖ domain. */
export function writeUserId(w: Writer, id: UserId): void {
  w.fixed(id.uuid, UUID_LENGTH, "userId.uuid");
  writeDomain(w, id.domain, "userId.domain");
}

/** Reads a user id. */
export function readUserId(r: Reader): UserId {
  const uuid = r.fixed("userId.uuid", UUID_LENGTH);
  return { uuid, domain: readDomain(r, "userId.domain") };
}

/** Writes a client id: client uuid (16) ‖ user id. */
export function writeClientId(w: Writer, id: ClientId): void {
  w.fixed(id.clientUuid, UUID_LENGTH, "clientId.clientUuid");
  writeUserId(w, id.userId);
}

/** Reads a client id. */
export function readClientId(r: Reader): ClientId {
  const clientUuid = r.fixed("clientId.clientUuid", UUID_LENGTH);
  return { clientUuid, userId: readUserId(r) };
}
