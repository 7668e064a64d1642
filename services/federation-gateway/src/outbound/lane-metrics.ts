import type { Bus } from "@phoenix/runtime/bus";
import { busLagSource, Gauge, type Metrics } from "@phoenix/runtime/metrics";

type Registry = Metrics["registry"];

/** What the gauges read of the delivery lanes. */
export interface LaneDirectory {
  /** Peers with a lane on this replica. */
  readonly peers: readonly string[];
  laneOf(peer: string): { stream: string; durable: string };
}

/**
 * `federation_outbound_queue_messages{peer}` and `federation_outbound_oldest_age_seconds{peer}`:
 * what waits for each peer domain in its lane (the lane durable's pending plus the message it
 * holds), read from the bus's consumer lag on scrape. Only the replica that delivers has lanes,
 * so only it reports; a peer's domain is the only label (no queue or user ids).
 */
export function registerLaneMetrics(
  registry: Registry,
  bus: Pick<Bus, "consumerLag">,
  lanes: LaneDirectory,
): void {
  const source = busLagSource(registry, bus);
  // A second gateway on one registry (an embedder's) keeps the first's series.
  if (source === undefined || registry.getSingleMetric("federation_outbound_queue_messages")) return;
  const gauge = (
    name: string,
    help: string,
    pick: (pending: number, oldestAt: number | undefined) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ["peer"],
      registers: [registry],
      async collect() {
        const lags = await source.get();
        this.reset();
        if (lags === undefined) return;
        const byDurable = new Map(lags.map((lag) => [`${lag.stream}\u0000${lag.durable}`, lag]));
        for (const peer of lanes.peers) {
          const { stream, durable } = lanes.laneOf(peer);
          const lag = byDurable.get(`${stream}\u0000${durable}`);
          if (lag) this.set({ peer }, pick(lag.pending + lag.ackPending, lag.oldestUnackedAt));
        }
      },
    });
  gauge(
    "federation_outbound_queue_messages",
    "Envelopes waiting for delivery to a peer domain (its lane's pending and held messages)",
    (waiting) => waiting,
  );
  gauge(
    "federation_outbound_oldest_age_seconds",
    "Age of the oldest envelope not yet accepted by a peer domain (0: nothing waiting)",
    (_waiting, oldestAt) => (oldestAt === undefined ? 0 : Math.max(0, Date.now() - oldestAt) / 1000),
  );
}
