import { delivery, rpcLabel } from "@phoenix/proto";
import { sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import {
  authenticateLeaf,
  checkEarKey,
  type DsDeps,
  localGroupId,
  openSigned,
  writeGroup,
} from "./pipeline.js";

const LABEL = rpcLabel(delivery.DeliveryServiceService.updateProfileKey);

/** UpdateProfileKey: replace the encrypted profile key of the sender's user. */
export async function updateProfileKey(
  deps: DsDeps,
  request: delivery.UpdateProfileKeyRequest,
): Promise<delivery.UpdateProfileKeyResponse> {
  const opened = openSigned(deps, request.signed, delivery.UpdateProfileKeyTbs, LABEL);
  const { tbs } = opened;
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, tbs.groupId, "tbs.group_id");
  if (tbs.encryptedUserProfileKey.length > LIMITS.profileKey)
    throw sizeLimit("tbs.encrypted_user_profile_key", LIMITS.profileKey, tbs.encryptedUserProfileKey.length);
  return writeGroup(deps, opened, uuid, earKey, async (group) => {
    const leaf = authenticateLeaf(deps, group, opened);
    group.updateProfileKey(leaf, tbs.encryptedUserProfileKey);
    return { result: {}, fanOuts: [], active: false };
  });
}
