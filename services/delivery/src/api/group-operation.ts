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

const LABEL = rpcLabel(delivery.DeliveryServiceService.groupOperation);

/** GroupOperation: a member's commit (add, remove, update, roles) validated and fanned out. */
export async function groupOperation(
  deps: DsDeps,
  request: delivery.GroupOperationRequest,
): Promise<delivery.GroupOperationResponse> {
  const opened = openSigned(deps, request.signed, delivery.GroupOperationTbs, LABEL);
  const { tbs } = opened;
  const earKey = checkEarKey(request.groupStateEarKey);
  const newEarKey =
    request.newGroupStateEarKey === undefined
      ? undefined
      : checkEarKey(request.newGroupStateEarKey, "new_group_state_ear_key");
  const uuid = localGroupId(deps, tbs.groupId, "tbs.group_id");
  if (tbs.commit.length > LIMITS.commit) throw sizeLimit("tbs.commit", LIMITS.commit, tbs.commit.length);
  if (tbs.groupInfo.length > LIMITS.groupInfo)
    throw sizeLimit("tbs.group_info", LIMITS.groupInfo, tbs.groupInfo.length);
  return writeGroup(deps, opened, uuid, earKey, async (group, induce) => {
    const leaf = authenticateLeaf(deps, group, opened);
    induce(leaf);
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
      result: { fanoutTimestamp: new Date(deps.ctx.now()), epoch: newEpoch },
      fanOuts,
      active: true,
      earKeyAfter,
    };
  });
}
