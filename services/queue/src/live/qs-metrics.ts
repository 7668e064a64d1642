import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The QS's own metrics, registered in the service's registry (served at /metrics). */
export class QsMetrics {
  readonly deliveries: Counter;
  readonly fanOuts: Counter;
  readonly dropped: Counter;
  readonly batchSize: Histogram;
  readonly batchSeconds: Histogram;
  readonly outbound: Counter;
  readonly listeners: Gauge;
  readonly pushes: Counter;
  readonly fanOutLeader: Gauge;

  constructor(registry: Registry | undefined, listenedQueues: () => number) {
    const registers = registry ? [registry] : [];
    this.deliveries = new Counter({
      name: "qs_fanout_deliveries_total",
      help: "Messages enqueued by the fan-out consumer (key updates included)",
      registers,
    });
    this.dropped = new Counter({
      name: "qs_fanout_dropped_total",
      help: "Messages not enqueued because the recipient's queue was full (QS_MAX_QUEUE_DEPTH)",
      registers,
    });
    this.fanOuts = new Counter({
      name: "qs_fanouts_total",
      help: "Fan-outs handled, by outcome",
      labelNames: ["outcome"],
      registers,
    });
    this.batchSize = new Histogram({
      name: "qs_fanout_batch_size",
      help: "Fan-outs per consumer transaction",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.batchSeconds = new Histogram({
      name: "qs_fanout_batch_seconds",
      help: "Time to handle one batch, commit included",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.outbound = new Counter({
      name: "qs_outbound_events_total",
      help: "Queue-deleted reports and federation envelopes written to the outbox",
      registers,
    });
    this.pushes = new Counter({
      name: "qs_push_notifications_total",
      help: "Push notifications by outcome: sent, unregistered (token deleted), failed, coalesced (folded into another)",
      labelNames: ["outcome"],
      registers,
    });
    this.fanOutLeader = new Gauge({
      name: "qs_fanout_leader",
      help: "1 while this replica runs the fan-out consumer (one replica at a time), else 0",
      registers,
    });
    this.listeners = new Gauge({
      name: "qs_listen_queues",
      help: "Queues with a Listen stream on this replica",
      registers,
      collect() {
        this.set(listenedQueues());
      },
    });
  }
}
