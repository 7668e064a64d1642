import { delivery } from "@phoenix/proto";
import { sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { checkEarKey, openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.groupOperation;

/** GroupOperation: a member's commit (add, remove, update, roles) validated and fanned out. */
export async function groupOperation(
  ctx: DeliveryContext,
  request: delivery.GroupOperationRequest,
): Promise<delivery.GroupOperationResponse> {
  const opened = openGroupRequest(ctx, request, delivery.GroupOperationTbs, METHOD);
  const { tbs, earKey } = opened;
  const newEarKey =
    request.newGroupStateEarKey === undefined
      ? undefined
      : checkEarKey(request.newGroupStateEarKey, "new_group_state_ear_key");
  if (tbs.commit.length > LIMITS.commit) throw sizeLimit("tbs.commit", LIMITS.commit, tbs.commit.length);
  if (tbs.groupInfo.length > LIMITS.groupInfo)
    throw sizeLimit("tbs.group_info", LIMITS.groupInfo, tbs.groupInfo.length);
  return writeGroup(ctx, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    write.induce(leaf);
    const { newEpoch, fanOuts, earKeyAfter } = await group.applyCommit({
      kind: "operation",
      earKey,
      newEarKey,
      senderLeaf: leaf,
      commit: tbs.commit,
      groupInfo: tbs.groupInfo,
      addedClients: tbs.addedClients,
    });
    return {
      result: { fanoutTimestamp: new Date(ctx.now()), epoch: newEpoch },
      fanOuts,
      active: true,
      earKeyAfter,
    };
  });
}
