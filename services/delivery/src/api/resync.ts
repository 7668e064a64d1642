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

const LABEL = rpcLabel(delivery.DeliveryServiceService.resync);

/** Resync: an external commit replacing the sender's own leaf (same credential, same queue). */
export async function resync(
  deps: DsDeps,
  request: delivery.ResyncRequest,
): Promise<delivery.ResyncResponse> {
  const opened = openSigned(deps, request.signed, delivery.ResyncTbs, LABEL);
  const { tbs } = opened;
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, tbs.groupId, "tbs.group_id");
  if (tbs.externalCommit.length > LIMITS.commit)
    throw sizeLimit("tbs.external_commit", LIMITS.commit, tbs.externalCommit.length);
  if (tbs.groupInfo.length > LIMITS.groupInfo)
    throw sizeLimit("tbs.group_info", LIMITS.groupInfo, tbs.groupInfo.length);
  return writeGroup(deps, opened, uuid, earKey, async (group, induce) => {
    const leaf = authenticateLeaf(deps, group, opened);
    induce(leaf);
    const { newEpoch, fanOuts } = await group.applyCommit({
      earKey,
      kind: "resync",
      senderLeaf: leaf,
      commit: tbs.externalCommit,
      groupInfo: tbs.groupInfo,
      addedClients: undefined,
    });
    return { result: { fanoutTimestamp: new Date(deps.ctx.now()), epoch: newEpoch }, fanOuts, active: true };
  });
}
