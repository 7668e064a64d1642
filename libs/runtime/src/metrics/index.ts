// Metric types for domain metrics (register them on `metrics.registry`), so services need no
// direct prom-client dependency.
export { Counter, Gauge, Histogram, Summary } from "prom-client";
export {
  type CreateMetricsOptions,
  createMetrics,
  type Metrics,
  RPC_LATENCY_BUCKETS,
  RpcMetrics,
} from "./create-metrics.js";
export { type MetricsServer, type MetricsServerOptions, startMetricsServer } from "./metrics-server.js";
