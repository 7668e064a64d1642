import { delivery } from "@phoenix/proto";
import { authenticateLeaf, type DsDeps, openGroupRequest, readGroupState } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.externalCommitInfo;

/** ExternalCommitInfo: what a member needs to resync (GroupInfo, tree, members, stored proposals). */
export async function externalCommitInfo(
  deps: DsDeps,
  request: delivery.ExternalCommitInfoRequest,
): Promise<delivery.ExternalCommitInfoResponse> {
  const opened = openGroupRequest(deps, request, delivery.ExternalCommitInfoTbs, METHOD);
  const group = await readGroupState(deps, opened.uuid, opened.earKey);
  const { claim } = await authenticateLeaf(deps, group, opened);
  await claim(deps.db);
  return {
    groupInfo: group.groupInfo,
    ratchetTree: group.encodedTree(),
    members: group.memberInfos(),
    pendingProposals: [...group.proposalMessages],
  };
}
