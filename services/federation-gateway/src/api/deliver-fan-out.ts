import { events, federation, rpcLabel } from "@phoenix/proto";
import { UnavailableError } from "@phoenix/runtime/errors";
import { checkInboundFanOut } from "../domain/envelope.js";
import { envelopeSeen, markEnvelopeSeen } from "../store/envelope-store.js";
import type { GatewayContext } from "./context.js";
import type { CallTransport } from "./inbound-auth.js";

const LABEL = rpcLabel(federation.FederationServiceService.deliverFanOut);

/**
 * DeliverFanOut: verifies the peer's signed envelope and publishes its FanOut on this domain's
 * `phoenix.fanout` with the envelope id as dedupe id before answering OK. A redelivered envelope
 * (the sender lost our answer) is answered OK without a second publish: the bus dedupes within
 * its window, the gateway's envelope table beyond it.
 */
export async function deliverFanOut(
  ctx: GatewayContext,
  request: federation.DeliverFanOutRequest,
  call: CallTransport = {},
): Promise<federation.DeliverFanOutResponse> {
  const { tbs, sender } = await ctx.auth.authenticate(
    federation.DeliverFanOutTbs,
    request.signed,
    LABEL,
    call,
  );
  const event = checkInboundFanOut(tbs.envelope, ctx.domain, sender);
  const envelopeId = tbs.envelope?.envelopeId ?? new Uint8Array();
  if (await envelopeSeen(ctx.db, envelopeId)) return {};
  try {
    await ctx.bus.publish(ctx.subjects.fanOut, events.FanOut.encode(event.fanOut).finish(), {
      id: event.dedupeId,
      headers: { "phoenix-source-domain": sender },
    });
  } catch (error) {
    throw new UnavailableError("the local bus is unavailable; retry later", { cause: error });
  }
  await markEnvelopeSeen(ctx.db, envelopeId);
  return {};
}
