import type { GroupInfo, MLSMessage, PublicMessage } from "ts-mls";
import { decodeMlsMessage } from "ts-mls";
import { MalformedMessageError } from "./errors.js";

/** Decode an MLSMessage carrying a PublicMessage (how Phoenix clients send commits and proposals). */
export function parsePublicMessage(bytes: Uint8Array): PublicMessage {
  const decoded = parseMlsMessage(bytes);
  if (decoded.wireformat !== "mls_public_message")
    throw new MalformedMessageError(`expected a PublicMessage, got ${decoded.wireformat}`);
  return decoded.publicMessage;
}

/** Decode an MLSMessage carrying a GroupInfo. */
export function parseGroupInfo(bytes: Uint8Array): GroupInfo {
  const decoded = parseMlsMessage(bytes);
  if (decoded.wireformat !== "mls_group_info")
    throw new MalformedMessageError(`expected a GroupInfo, got ${decoded.wireformat}`);
  return decoded.groupInfo;
}

/** Decode a whole MLSMessage of any wire format. */
export function parseMlsMessage(bytes: Uint8Array): MLSMessage {
  let result: ReturnType<typeof decodeMlsMessage>;
  try {
    result = decodeMlsMessage(bytes, 0);
  } catch (e) {
    throw new MalformedMessageError(`cannot decode MLSMessage: ${(e as Error).message}`);
  }
  if (result === undefined) throw new MalformedMessageError("cannot decode MLSMessage");
  if (result[1] !== bytes.byteLength) throw new MalformedMessageError("trailing bytes after MLSMessage");
  return result[0];
}
