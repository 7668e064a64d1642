import { events, federation, rpcLabel } from "@phoenix/proto";
import { UnavailableError } from "@phoenix/runtime/errors";
import { checkInboundReport } from "../domain/envelope.js";
import { envelopeSeen, markEnvelopeSeen } from "../store/envelope-store.js";
import type { GatewayContext } from "./context.js";
import type { CallTransport } from "./inbound-auth.js";

const LABEL = rpcLabel(federation.FederationServiceService.reportQueueDeleted);

/**
 * ReportQueueDeleted: a peer's QS found the queue of a member of one of our groups missing. The
 * verified report goes to this domain's DS on `phoenix.queue_deleted` (dedupe id = the report's
 * event id) before the answer.
 */
export async function reportQueueDeleted(
  ctx: GatewayContext,
  request: federation.ReportQueueDeletedRequest,
  call: CallTransport = {},
): Promise<federation.ReportQueueDeletedResponse> {
  const { tbs, sender } = await ctx.auth.authenticate(
    federation.ReportQueueDeletedTbs,
    request.signed,
    LABEL,
    call,
  );
  const event = checkInboundReport(tbs.envelope, ctx.domain, sender);
  const envelopeId = tbs.envelope?.envelopeId ?? new Uint8Array();
  if (await envelopeSeen(ctx.db, envelopeId)) return {};
  try {
    await ctx.bus.publish(ctx.subjects.queueDeleted, events.QueueDeleted.encode(event.report).finish(), {
      id: event.dedupeId,
      headers: { "phoenix-source-domain": sender },
    });
  } catch (error) {
    throw new UnavailableError("the local bus is unavailable; retry later", { cause: error });
  }
  await markEnvelopeSeen(ctx.db, envelopeId);
  return {};
}
