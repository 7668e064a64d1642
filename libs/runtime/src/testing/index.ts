export { testConfig } from "../module/test-config.js";
export { FakeFederationProxy, type ProxiedCall } from "./fake-federation-proxy.js";
export { fanOutEnvelope } from "./federation-envelope.js";
export {
  type RecordedMessage,
  RecordingBus,
  RecordingBusError,
  type RecordingBusHooks,
} from "./recording-bus.js";
export {
  createTestDatabase,
  createTestPglite,
  type TestDatabase,
  TestDatabaseError,
  type TestDatabaseOptions,
} from "./test-database.js";
export { makeTestTls, type TestTlsFiles, type TestTlsOptions } from "./test-tls.js";
