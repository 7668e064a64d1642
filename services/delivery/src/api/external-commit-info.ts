import { delivery } from "@phoenix/proto";
import type { DeliveryContext } from "./context.js";
import { authenticateLeaf, openGroupRequest, readGroupState } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.externalCommitInfo;

/** ExternalCommitInfo: what a member needs to resync (GroupInfo, tree, members, stored proposals). */
export async function externalCommitInfo(
  ctx: DeliveryContext,
  request: delivery.ExternalCommitInfoRequest,
): Promise<delivery.ExternalCommitInfoResponse> {
  const opened = openGroupRequest(ctx, request, delivery.ExternalCommitInfoTbs, METHOD);
  const group = await readGroupState(ctx, opened.uuid, opened.earKey);
  const { claim } = await authenticateLeaf(ctx, group, opened);
  await claim(ctx.db);
  return {
    groupInfo: group.groupInfo,
    ratchetTree: group.encodedTree(),
    members: group.memberInfos(),
    pendingProposals: [...group.proposalMessages],
  };
}
