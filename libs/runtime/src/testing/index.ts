export { testConfig } from "../module/test-config.js";
export { callFailure } from "./call-failure.js";
export { type EventuallyOptions, EventuallyTimeoutError, eventually } from "./eventually.js";
export { FakeFederationProxy, type ProxiedCall } from "./fake-federation-proxy.js";
export { fanOutEnvelope } from "./federation-envelope.js";
export { acceptsConnections, freePort, freePorts, NATS_SERVER_BINARY, waitForPort } from "./local-ports.js";
export { type PrivateNats, privateNats } from "./private-nats.js";
export {
  type CountedQuery,
  classifyStatement,
  countQueries,
  QueryCounter,
  type QueryKind,
  type QueryTally,
} from "./query-counter.js";
export {
  type RecordedMessage,
  RecordingBus,
  RecordingBusError,
  type RecordingBusHooks,
} from "./recording-bus.js";
export {
  type Exit,
  type LogLine,
  ProcessStartError,
  REPO_ROOT,
  ServiceProcess,
  type ServiceProcessOptions,
} from "./service-process.js";
export { startTcpBalancer, type TcpBalancer } from "./tcp-balancer.js";
export { startTcpProxy, type TcpProxy, type TcpTarget } from "./tcp-proxy.js";
export {
  createTestDatabase,
  createTestPglite,
  type TestDatabase,
  TestDatabaseError,
  type TestDatabaseOptions,
} from "./test-database.js";
export { makeTestTls, type TestTlsFiles, type TestTlsOptions } from "./test-tls.js";
