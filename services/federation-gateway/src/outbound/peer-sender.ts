import { events, federation, rpcLabel } from "@phoenix/proto";
import { signFederationRequest } from "../domain/signing.js";
import type { KeyRing } from "../store/key-ring.js";
import type { PeerClients } from "./peer-clients.js";

const DELIVER_LABEL = rpcLabel(federation.FederationServiceService.deliverFanOut);
const REPORT_LABEL = rpcLabel(federation.FederationServiceService.reportQueueDeleted);

/** A federation request could not be signed: this gateway has no active key. */
export class NoSigningKeyError extends Error {
  override readonly name = "NoSigningKeyError";
}

/** Signs QS-to-QS envelopes with this domain's key and sends them to the destination's gateway. */
export class PeerSender {
  constructor(
    private readonly domain: string,
    private readonly keys: KeyRing,
    private readonly clients: PeerClients,
    private readonly timeoutMs: number,
  ) {}

  /** Delivers one envelope (DeliverFanOut or ReportQueueDeleted by its content). */
  async deliver(envelope: events.FederationEnvelope, signal?: AbortSignal): Promise<void> {
    const key = this.keys.active();
    if (key === undefined) throw new NoSigningKeyError("no active federation signing key");
    const client = await this.clients.get(envelope.destinationDomain);
    const options = { deadlineMs: this.timeoutMs, ...(signal ? { signal } : {}) };
    if (envelope.content?.$case === "queueDeleted") {
      const signed = await signFederationRequest(
        federation.ReportQueueDeletedTbs,
        REPORT_LABEL,
        this.domain,
        key.signingKey,
        {
          envelope,
        },
      );
      await client.reportQueueDeleted({ signed }, options);
      return;
    }
    const signed = await signFederationRequest(
      federation.DeliverFanOutTbs,
      DELIVER_LABEL,
      this.domain,
      key.signingKey,
      {
        envelope,
      },
    );
    await client.deliverFanOut({ signed }, options);
  }
}

/** Decodes an outbound bus message. */
export function decodeOutbound(data: Uint8Array): events.FederationEnvelope {
  return events.FederationEnvelope.decode(data);
}
