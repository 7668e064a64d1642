import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { deleteClientRecord } from "../store/clients.js";
import { authenticateClient, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.deleteClient);

/** DeleteClient: the client record with its queue and AddPackages; the user goes with its last client. */
export async function deleteClient(
  ctx: QueueContext,
  request: queue.DeleteClientRequest,
): Promise<queue.DeleteClientResponse> {
  const { client, claim } = await authenticateClient(ctx, request.signed, queue.DeleteClientTbs, LABEL);
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await deleteClientRecord(tx, client);
  });
  return {};
}
