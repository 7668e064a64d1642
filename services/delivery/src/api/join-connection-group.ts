import { delivery } from "@phoenix/proto";
import { sizeLimit } from "../domain/errors.js";
import { checkQueueRef } from "../domain/group.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, senderLeaf, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.joinConnectionGroup;

/**
 * JoinConnectionGroup: an external commit into a group holding one user. The EAR key (from the
 * connection offer) authenticates the joiner; the signature is by the leaf the commit creates.
 */
export async function joinConnectionGroup(
  ctx: DeliveryContext,
  request: delivery.JoinConnectionGroupRequest,
): Promise<delivery.JoinConnectionGroupResponse> {
  const opened = openGroupRequest(ctx, request, delivery.JoinConnectionGroupTbs, METHOD);
  const { tbs } = opened;
  if (tbs.externalCommit.length > LIMITS.commit)
    throw sizeLimit("tbs.external_commit", LIMITS.commit, tbs.externalCommit.length);
  if (tbs.groupInfo.length > LIMITS.groupInfo)
    throw sizeLimit("tbs.group_info", LIMITS.groupInfo, tbs.groupInfo.length);
  if (tbs.encryptedUserProfileKey.length > LIMITS.profileKey)
    throw sizeLimit("tbs.encrypted_user_profile_key", LIMITS.profileKey, tbs.encryptedUserProfileKey.length);
  const joinerQueue = checkQueueRef(tbs.joinerQueue, "tbs.joiner_queue");
  const leaf = senderLeaf(opened.header);
  return writeGroup(ctx, opened, async (group, write) => {
    write.induce(undefined);
    const { newEpoch, fanOuts } = await group.applyCommit({
      earKey: opened.earKey,
      kind: "join_connection",
      senderLeaf: leaf,
      commit: tbs.externalCommit,
      groupInfo: tbs.groupInfo,
      addedClients: undefined,
      joinerQueue,
      joinerProfileKey: tbs.encryptedUserProfileKey,
    });
    // The joiner's leaf exists only now: verify the request with its key.
    await write.verify(group.signatureKeyOf(leaf), `joiner leaf ${leaf}`);
    return { result: { fanoutTimestamp: new Date(ctx.now()), epoch: newEpoch }, fanOuts, active: true };
  });
}
