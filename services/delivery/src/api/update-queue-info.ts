import { delivery } from "@phoenix/proto";
import { checkQueueRef } from "../domain/group.js";
import type { DeliveryContext } from "./context.js";
import { openGroupRequest, writeGroup } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.updateQueueInfo;

/** UpdateQueueInfo: replace the sender's queue reference. */
export async function updateQueueInfo(
  ctx: DeliveryContext,
  request: delivery.UpdateQueueInfoRequest,
): Promise<delivery.UpdateQueueInfoResponse> {
  const opened = openGroupRequest(ctx, request, delivery.UpdateQueueInfoTbs, METHOD);
  const queue = checkQueueRef(opened.tbs.queue, "tbs.queue");
  return writeGroup(ctx, opened, async (group, write) => {
    const leaf = await write.authenticateLeaf();
    group.updateQueue(leaf, queue);
    return { result: {}, fanOuts: [], active: false };
  });
}
