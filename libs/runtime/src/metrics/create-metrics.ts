import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Latency buckets (seconds) from 1 ms to 30 s: RPCs here are mostly single-digit milliseconds. */
export const RPC_LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * gRPC server metrics, named after the go-grpc-prometheus conventions so stock dashboards work:
 * `grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`,
 * `grpc_server_handling_seconds{grpc_service,grpc_method}` and
 * `grpc_server_in_flight{grpc_service,grpc_method}`. Every call is counted, including those
 * refused before a handler ran (oversized message, client deadline).
 */
export class RpcMetrics {
  readonly started: Counter<"grpc_service" | "grpc_method">;
  readonly handled: Counter<"grpc_service" | "grpc_method" | "grpc_code">;
  readonly latency: Histogram<"grpc_service" | "grpc_method">;
  readonly inFlight: Gauge<"grpc_service" | "grpc_method">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.started = new Counter({
      name: "grpc_server_started_total",
      help: "RPCs started on the server.",
      labelNames: ["grpc_service", "grpc_method"],
      registers,
    });
    this.handled = new Counter({
      name: "grpc_server_handled_total",
      help: "RPCs completed on the server, by status code.",
      labelNames: ["grpc_service", "grpc_method", "grpc_code"],
      registers,
    });
    this.latency = new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Time from receiving an RPC to its final status.",
      labelNames: ["grpc_service", "grpc_method"],
      buckets: RPC_LATENCY_BUCKETS,
      registers,
    });
    this.inFlight = new Gauge({
      name: "grpc_server_in_flight",
      help: "RPCs currently being handled.",
      labelNames: ["grpc_service", "grpc_method"],
      registers,
    });
  }

  /** Records the start of a call; call the returned function exactly once with the final code name. */
  start(service: string, method: string): (code: string) => void {
    const labels = { grpc_service: service, grpc_method: method };
    this.started.inc(labels);
    this.inFlight.inc(labels);
    const stopTimer = this.latency.startTimer(labels);
    let done = false;
    return (code) => {
      if (done) return;
      done = true;
      stopTimer();
      this.inFlight.dec(labels);
      this.handled.inc({ ...labels, grpc_code: code });
    };
  }
}

export interface CreateMetricsOptions {
  /** Bound to every series as the `service` label. */
  service: string;
  /** Collect Node process metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
}

/** A service's metrics: its own registry (add domain metrics with `registers: [registry]`) and RPC metrics. */
export interface Metrics {
  readonly registry: Registry;
  readonly rpc: RpcMetrics;
}

/** Creates a fresh registry for one service, with process metrics and the gRPC server metrics. */
export function createMetrics(options: CreateMetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return { registry, rpc: new RpcMetrics(registry) };
}
