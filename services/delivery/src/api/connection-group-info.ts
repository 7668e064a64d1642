import type { delivery } from "@phoenix/proto";
import { FailedPreconditionError } from "@phoenix/runtime/errors";
import type { DeliveryContext } from "./context.js";
import { checkEarKey, localGroupId, readGroupState } from "./pipeline.js";

/** ConnectionGroupInfo: for a connection responder; the EAR key is the only credential. */
export async function connectionGroupInfo(
  ctx: DeliveryContext,
  request: delivery.ConnectionGroupInfoRequest,
): Promise<delivery.ConnectionGroupInfoResponse> {
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(ctx, request.groupId, "group_id");
  const group = await readGroupState(ctx, uuid, earKey);
  if (group.userCount() !== 1) throw new FailedPreconditionError("the group holds more than one user");
  return {
    groupInfo: group.groupInfo,
    ratchetTree: group.encodedTree(),
    members: group.memberInfos(),
    pendingProposals: [...group.proposalMessages],
  };
}
