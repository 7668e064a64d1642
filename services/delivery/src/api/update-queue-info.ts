import { delivery, rpcLabel } from "@phoenix/proto";
import { checkQueueRef } from "../domain/group.js";
import {
  authenticateLeaf,
  checkEarKey,
  type DsDeps,
  localGroupId,
  openSigned,
  writeGroup,
} from "./pipeline.js";

const LABEL = rpcLabel(delivery.DeliveryServiceService.updateQueueInfo);

/** UpdateQueueInfo: replace the sender's queue reference. */
export async function updateQueueInfo(
  deps: DsDeps,
  request: delivery.UpdateQueueInfoRequest,
): Promise<delivery.UpdateQueueInfoResponse> {
  const opened = openSigned(deps, request.signed, delivery.UpdateQueueInfoTbs, LABEL);
  const earKey = checkEarKey(request.groupStateEarKey);
  const uuid = localGroupId(deps, opened.tbs.groupId, "tbs.group_id");
  const queue = checkQueueRef(opened.tbs.queue, "tbs.queue");
  return writeGroup(deps, opened, uuid, earKey, async (group) => {
    const leaf = authenticateLeaf(deps, group, opened);
    group.updateQueue(leaf, queue);
    return { result: {}, fanOuts: [], active: false };
  });
}
