import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { quota } from "../domain/errors.js";
import { blocklistEntry } from "../domain/fan-out.js";
import { checkGroupId } from "../domain/validate.js";
import { addBlocklistEntry, blocklistSize } from "../store/blocklist.js";
import { authenticateClient, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.blockGroup);

/** BlockGroup: fan-outs of the group are dropped for this queue (stored as a keyed hash). */
export async function blockGroup(
  ctx: QueueContext,
  request: queue.BlockGroupRequest,
): Promise<queue.BlockGroupResponse> {
  const { tbs, client, claim } = await authenticateClient(ctx, request.signed, queue.BlockGroupTbs, LABEL);
  const group = checkGroupId(tbs.groupId, "tbs.group_id");
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    const size = await blocklistSize(tx, client.clientId);
    if (size >= ctx.limits.maxBlocklist) throw quota("blocklist entries", ctx.limits.maxBlocklist, size + 1);
    await addBlocklistEntry(tx, client.clientId, blocklistEntry(ctx.storage, client.clientId, group));
  });
  return {};
}
