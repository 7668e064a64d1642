import { events, federation, rpcLabel } from "@phoenix/proto";
import { UnavailableError } from "@phoenix/runtime/errors";
import { checkInboundFanOut } from "../domain/envelope.js";
import { envelopeSeen, markEnvelopeSeen } from "../store/envelope-store.js";
import type { GatewayDeps } from "./deps.js";
import type { CallTransport } from "./inbound-auth.js";

const LABEL = rpcLabel(federation.FederationServiceService.deliverFanOut);

/**
 * DeliverFanOut: verifies the peer's signed envelope and publishes its FanOut on this domain's
 * `phoenix.fanout` with the envelope id as dedupe id before answering OK. A redelivered envelope
 * (the sender lost our answer) is answered OK without a second publish: the bus dedupes within
 * its window, the gateway's envelope table beyond it.
 */
export async function deliverFanOut(
  deps: GatewayDeps,
  request: federation.DeliverFanOutRequest,
  transport: CallTransport = {},
): Promise<federation.DeliverFanOutResponse> {
  const { tbs, sender } = await deps.auth.authenticate(
    federation.DeliverFanOutTbs,
    request.signed,
    LABEL,
    transport,
  );
  const event = checkInboundFanOut(tbs.envelope, deps.domain, sender);
  const envelopeId = tbs.envelope?.envelopeId ?? new Uint8Array();
  if (await envelopeSeen(deps.db, envelopeId)) return {};
  try {
    await deps.bus.publish(deps.subjects.fanOut, events.FanOut.encode(event.fanOut).finish(), {
      id: event.dedupeId,
      headers: { "phoenix-source-domain": sender },
    });
  } catch (error) {
    throw new UnavailableError("the local bus is unavailable; retry later", { cause: error });
  }
  await markEnvelopeSeen(deps.db, envelopeId);
  return {};
}
