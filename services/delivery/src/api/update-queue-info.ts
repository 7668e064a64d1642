import { delivery } from "@phoenix/proto";
import { checkQueueRef } from "../domain/group.js";
import { type DsDeps, openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.updateQueueInfo;

/** UpdateQueueInfo: replace the sender's queue reference. */
export async function updateQueueInfo(
  deps: DsDeps,
  request: delivery.UpdateQueueInfoRequest,
): Promise<delivery.UpdateQueueInfoResponse> {
  const opened = openGroupRequest(deps, request, delivery.UpdateQueueInfoTbs, METHOD);
  const queue = checkQueueRef(opened.tbs.queue, "tbs.queue");
  return writeGroup(deps, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    group.updateQueue(leaf, queue);
    return { result: {}, fanOuts: [], active: false };
  });
}
