import { bytesEqual } from "@phoenix/crypto";
import { parseMlsMessage } from "@phoenix/mls";
import { delivery } from "@phoenix/proto";
import { invalidMls, sizeLimit, wrongEpoch } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { DeliveryContext } from "./context.js";
import { authenticateLeaf, fanOutOnly, openGroupRequest, readGroupState } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.sendMessage;

/** SendMessage: an application message fanned out unprocessed; the state is read, never rewritten. */
export async function sendMessage(
  ctx: DeliveryContext,
  request: delivery.SendMessageRequest,
): Promise<delivery.SendMessageResponse> {
  const opened = openGroupRequest(ctx, request, delivery.SendMessageTbs, METHOD);
  const { tbs } = opened;
  if (tbs.message.length > LIMITS.applicationMessage)
    throw sizeLimit("tbs.message", LIMITS.applicationMessage, tbs.message.length);
  const group = await readGroupState(ctx, opened.uuid, opened.earKey);
  const { leaf, claim } = await authenticateLeaf(ctx, group, opened);
  const message = parseMlsMessage(tbs.message);
  if (message.wireformat !== "mls_private_message") throw invalidMls("tbs.message is not a PrivateMessage");
  const pm = message.privateMessage;
  if (!bytesEqual(pm.groupId, group.mlsGroupId)) throw invalidMls("tbs.message belongs to another group");
  if (pm.contentType !== "application") throw invalidMls("tbs.message is not an application message");
  if (pm.epoch !== group.epoch) throw wrongEpoch(group.epoch, pm.epoch);
  const fanoutTimestamp = await fanOutOnly(ctx, claim, { uuid: opened.uuid, domain: ctx.domain }, [
    {
      recipients: group.recipients(new Set([leaf])),
      content: { $case: "mlsMessage", value: tbs.message },
      suppressNotifications: tbs.suppressNotifications,
    },
  ]);
  return { fanoutTimestamp };
}
