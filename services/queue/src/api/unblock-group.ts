import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { blocklistEntry } from "../domain/fan-out.js";
import { checkGroupId } from "../domain/validate.js";
import { removeBlocklistEntry } from "../store/blocklist.js";
import { authenticateClient, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.unblockGroup);

/** UnblockGroup: accepts the group's fan-outs again (no error when it was not blocked). */
export async function unblockGroup(
  ctx: QueueContext,
  request: queue.UnblockGroupRequest,
): Promise<queue.UnblockGroupResponse> {
  const { tbs, client, claim } = await authenticateClient(ctx, request.signed, queue.UnblockGroupTbs, LABEL);
  const group = checkGroupId(tbs.groupId, "tbs.group_id");
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await removeBlocklistEntry(tx, client.clientId, blocklistEntry(ctx.storage, client.clientId, group));
  });
  return {};
}
