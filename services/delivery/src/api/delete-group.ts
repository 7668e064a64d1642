import { delivery } from "@phoenix/proto";
import { sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.deleteGroup;

/** DeleteGroup: an admin's commit removing everyone else is fanned out, then the row is deleted. */
export async function deleteGroup(
  ctx: DeliveryContext,
  request: delivery.DeleteGroupRequest,
): Promise<delivery.DeleteGroupResponse> {
  const opened = openGroupRequest(ctx, request, delivery.DeleteGroupTbs, METHOD);
  const { tbs } = opened;
  if (tbs.commit.length > LIMITS.commit) throw sizeLimit("tbs.commit", LIMITS.commit, tbs.commit.length);
  return writeGroup(ctx, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    const { fanOuts } = await group.applyCommit({
      earKey: opened.earKey,
      kind: "delete",
      senderLeaf: leaf,
      commit: tbs.commit,
      groupInfo: undefined,
      addedClients: undefined,
    });
    return {
      result: { fanoutTimestamp: new Date(ctx.now()) },
      fanOuts,
      active: true,
      deleteGroup: true,
    };
  });
}
