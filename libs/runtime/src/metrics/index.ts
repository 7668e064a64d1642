export {
  type CreateMetricsOptions,
  createMetrics,
  type Metrics,
  RPC_LATENCY_BUCKETS,
  RpcMetrics,
} from "./create-metrics.js";
export { type MetricsServer, type MetricsServerOptions, startMetricsServer } from "./metrics-server.js";
