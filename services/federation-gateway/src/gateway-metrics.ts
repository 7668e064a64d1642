import { Counter, type Metrics } from "@phoenix/runtime/metrics";

type Registry = Metrics["registry"];

/** The gateway's domain metrics (registered on runService's registry when given). */
export class GatewayMetrics {
  /** Envelopes a peer accepted, per peer and kind (fan_out, queue_deleted). */
  readonly delivered: Counter<"peer" | "kind">;
  /** Failed delivery attempts (the envelope is retried), per peer. */
  readonly deliveryFailures: Counter<"peer">;
  /** Envelopes given up on (malformed, refused permanently, peer denied), per peer and reason. */
  readonly dropped: Counter<"peer" | "reason">;
  /** Inbound requests refused before reaching the bus or a service, per status. */
  readonly inboundRefused: Counter<"code">;

  constructor(registry?: Registry) {
    const registers = registry ? [registry] : [];
    this.delivered = new Counter({
      name: "federation_outbound_delivered_total",
      help: "Envelopes accepted by a peer gateway",
      labelNames: ["peer", "kind"],
      registers,
    });
    this.deliveryFailures = new Counter({
      name: "federation_outbound_failures_total",
      help: "Failed delivery attempts to a peer gateway (retried with backoff)",
      labelNames: ["peer"],
      registers,
    });
    this.dropped = new Counter({
      name: "federation_outbound_dropped_total",
      help: "Outbound envelopes given up on",
      labelNames: ["peer", "reason"],
      registers,
    });
    this.inboundRefused = new Counter({
      name: "federation_inbound_refused_total",
      help: "Inbound federation requests refused by the gateway",
      labelNames: ["code"],
      registers,
    });
  }
}
