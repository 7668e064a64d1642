import { delivery } from "@phoenix/proto";
import { malformed, sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.selfRemove;

/** SelfRemove: Remove proposals for all of the sender's user's clients into the proposal store. */
export async function selfRemove(
  ctx: DeliveryContext,
  request: delivery.SelfRemoveRequest,
): Promise<delivery.SelfRemoveResponse> {
  const opened = openGroupRequest(ctx, request, delivery.SelfRemoveTbs, METHOD);
  const { tbs } = opened;
  if (tbs.removeProposals.length === 0) throw malformed("tbs.remove_proposals", "empty");
  for (const p of tbs.removeProposals)
    if (p.length > LIMITS.proposal) throw sizeLimit("tbs.remove_proposals", LIMITS.proposal, p.length);
  return writeGroup(ctx, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    write.induce(leaf);
    const fanOuts = await group.storeSelfRemove(leaf, tbs.removeProposals);
    return { result: { fanoutTimestamp: new Date(ctx.now()) }, fanOuts, active: false };
  });
}
