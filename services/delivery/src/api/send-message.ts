import { bytesEqual } from "@phoenix/crypto";
import { parseMlsMessage } from "@phoenix/mls";
import { delivery } from "@phoenix/proto";
import { invalidMls, sizeLimit, wrongEpoch } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import { authenticateLeaf, type DsDeps, fanOutOnly, openGroupRequest, readGroupState } from "./pipeline.js";

const METHOD = delivery.DeliveryServiceService.sendMessage;

/** SendMessage: an application message fanned out unprocessed; the state is read, never rewritten. */
export async function sendMessage(
  deps: DsDeps,
  request: delivery.SendMessageRequest,
): Promise<delivery.SendMessageResponse> {
  const opened = openGroupRequest(deps, request, delivery.SendMessageTbs, METHOD);
  const { tbs } = opened;
  if (tbs.message.length > LIMITS.applicationMessage)
    throw sizeLimit("tbs.message", LIMITS.applicationMessage, tbs.message.length);
  const group = await readGroupState(deps, opened.uuid, opened.earKey);
  const { leaf, claim } = await authenticateLeaf(deps, group, opened);
  const message = parseMlsMessage(tbs.message);
  if (message.wireformat !== "mls_private_message") throw invalidMls("tbs.message is not a PrivateMessage");
  const pm = message.privateMessage;
  if (!bytesEqual(pm.groupId, group.mlsGroupId)) throw invalidMls("tbs.message belongs to another group");
  if (pm.contentType !== "application") throw invalidMls("tbs.message is not an application message");
  if (pm.epoch !== group.epoch) throw wrongEpoch(group.epoch, pm.epoch);
  const fanoutTimestamp = await fanOutOnly(deps, claim, { uuid: opened.uuid, domain: deps.ctx.domain }, [
    {
      recipients: group.recipients(new Set([leaf])),
      content: { $case: "mlsMessage", value: tbs.message },
      suppressNotifications: tbs.suppressNotifications,
    },
  ]);
  return { fanoutTimestamp };
}
