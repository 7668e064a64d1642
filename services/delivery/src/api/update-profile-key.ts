import { delivery } from "@phoenix/proto";
import { sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.updateProfileKey;

/** UpdateProfileKey: replace the encrypted profile key of the sender's user. */
export async function updateProfileKey(
  ctx: DeliveryContext,
  request: delivery.UpdateProfileKeyRequest,
): Promise<delivery.UpdateProfileKeyResponse> {
  const opened = openGroupRequest(ctx, request, delivery.UpdateProfileKeyTbs, METHOD);
  const { tbs } = opened;
  if (tbs.encryptedUserProfileKey.length > LIMITS.profileKey)
    throw sizeLimit("tbs.encrypted_user_profile_key", LIMITS.profileKey, tbs.encryptedUserProfileKey.length);
  return writeGroup(ctx, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    group.updateProfileKey(leaf, tbs.encryptedUserProfileKey);
    return { result: {}, fanOuts: [], active: false };
  });
}
