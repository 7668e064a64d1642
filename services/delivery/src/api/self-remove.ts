import { delivery, rpcLabel } from "@phoenix/proto";
import { malformed, sizeLimit } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import {
  authenticateLeaf,
  checkEarKey,
  type DsDeps,
  localGroupId,
  openSigned,
  writeGroup,
} from "./pipeline.js";

const LABEL = rpcLabel(delivery.DeliveryServiceService.selfRemove);

/** SelfRemove: Remove proposals for all of the sender's user's clients into the proposal store. */
export async function selfRemove(
  deps: DsDeps,
  request: delivery.SelfRemoveRequest,
): Promise<delivery.SelfRemoveResponse> {
  const opened = openSigned(deps, request.signed, delivery.SelfRemoveTbs, LABEL);
  const { tbs } = opened;
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, tbs.groupId, "tbs.group_id");
  if (tbs.removeProposals.length === 0) throw malformed("tbs.remove_proposals", "empty");
  for (const p of tbs.removeProposals)
    if (p.length > LIMITS.proposal) throw sizeLimit("tbs.remove_proposals", LIMITS.proposal, p.length);
  return writeGroup(deps, opened, uuid, earKey, async (group, induce) => {
    const leaf = authenticateLeaf(deps, group, opened);
    induce(leaf);
    const fanOuts = await group.storeSelfRemove(leaf, tbs.removeProposals);
    return { result: { fanoutTimestamp: new Date(deps.ctx.now()) }, fanOuts, active: false };
  });
}
