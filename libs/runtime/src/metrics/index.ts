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
export {
  busLagSource,
  OUTBOX_COUNT_LIMIT,
  type OutboxState,
  readOutbox,
  registerBusMetrics,
  registerOutboxMetrics,
  registerPoolMetrics,
  registerReadinessMetric,
} from "./operational-metrics.js";
export {
  type MetricSample,
  type ParsedMetrics,
  parsePrometheusText,
  sampleValue,
} from "./prometheus-text.js";
export {
  CollectTimeoutError,
  DEFAULT_COLLECT_TIMEOUT_MS,
  ScrapeSource,
  type ScrapeSourceOptions,
} from "./scrape-collector.js";
