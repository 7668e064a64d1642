import { delivery, rpcLabel } from "@phoenix/proto";
import {
  authenticateLeaf,
  checkEarKey,
  type DsDeps,
  localGroupId,
  openSigned,
  readGroupState,
} from "./pipeline.js";

const LABEL = rpcLabel(delivery.DeliveryServiceService.externalCommitInfo);

/** ExternalCommitInfo: what a member needs to resync (GroupInfo, tree, members, stored proposals). */
export async function externalCommitInfo(
  deps: DsDeps,
  request: delivery.ExternalCommitInfoRequest,
): Promise<delivery.ExternalCommitInfoResponse> {
  const opened = openSigned(deps, request.signed, delivery.ExternalCommitInfoTbs, LABEL);
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, opened.tbs.groupId, "tbs.group_id");
  const group = await readGroupState(deps, uuid, earKey);
  authenticateLeaf(deps, group, opened);
  return {
    groupInfo: group.groupInfo,
    ratchetTree: group.encodedTree(),
    members: group.memberInfos(),
    pendingProposals: [...group.proposalMessages],
  };
}
