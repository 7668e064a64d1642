import type { common, MessageDecoder } from "@phoenix/proto";

/**
 * The domain of the group a signed DS request is about, for routing it to that group's DS: the
 * `group_id` inside the request's tbs (the signature covers it, so it is read from the signed
 * bytes, decoding only to find it). A request whose tbs does not decode, or names no group,
 * yields "" — served here, where the handler refuses it as before.
 */
export function signedGroupDomain<T extends { groupId?: common.QualifiedGroupId | undefined }>(
  tbsType: MessageDecoder<T>,
): (request: { signed?: common.Signed | undefined }) => string {
  return (request) => {
    if (request.signed === undefined) return "";
    try {
      return tbsType.decode(request.signed.tbs).groupId?.domain ?? "";
    } catch {
      return "";
    }
  };
}
