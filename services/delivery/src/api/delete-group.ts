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

const LABEL = rpcLabel(delivery.DeliveryServiceService.deleteGroup);

/** DeleteGroup: an admin's commit removing everyone else is fanned out, then the row is deleted. */
export async function deleteGroup(
  deps: DsDeps,
  request: delivery.DeleteGroupRequest,
): Promise<delivery.DeleteGroupResponse> {
  const opened = openSigned(deps, request.signed, delivery.DeleteGroupTbs, LABEL);
  const { tbs } = opened;
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, tbs.groupId, "tbs.group_id");
  if (tbs.commit.length > LIMITS.commit) throw sizeLimit("tbs.commit", LIMITS.commit, tbs.commit.length);
  return writeGroup(deps, opened, uuid, earKey, async (group) => {
    const leaf = authenticateLeaf(deps, group, opened);
    const { fanOuts } = await group.applyCommit({
      earKey,
      kind: "delete",
      senderLeaf: leaf,
      commit: tbs.commit,
      groupInfo: undefined,
      addedClients: undefined,
    });
    return {
      result: { fanoutTimestamp: new Date(deps.ctx.now()) },
      fanOuts,
      active: true,
      deleteGroup: true,
    };
  });
}
