import { delivery } from "@phoenix/proto";
import { sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.resync;

/** Resync: an external commit replacing the sender's own leaf (same credential, same queue). */
export async function resync(
  ctx: DeliveryContext,
  request: delivery.ResyncRequest,
): Promise<delivery.ResyncResponse> {
  const opened = openGroupRequest(ctx, request, delivery.ResyncTbs, METHOD);
  const { tbs } = opened;
  if (tbs.externalCommit.length > LIMITS.commit)
    throw sizeLimit("tbs.external_commit", LIMITS.commit, tbs.externalCommit.length);
  if (tbs.groupInfo.length > LIMITS.groupInfo)
    throw sizeLimit("tbs.group_info", LIMITS.groupInfo, tbs.groupInfo.length);
  return writeGroup(ctx, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    write.induce(leaf);
    const { newEpoch, fanOuts } = await group.applyCommit({
      earKey: opened.earKey,
      kind: "resync",
      senderLeaf: leaf,
      commit: tbs.externalCommit,
      groupInfo: tbs.groupInfo,
      addedClients: undefined,
    });
    return { result: { fanoutTimestamp: new Date(ctx.now()), epoch: newEpoch }, fanOuts, active: true };
  });
}
