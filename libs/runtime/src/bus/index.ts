export { type BusConfig, BusConfigError, busConfig, type OpenBusOptions, openBus } from "./config.js";
export { createEmbeddedBus, type EmbeddedBusOptions } from "./embedded-bus.js";
export {
  BusClosedError,
  BusOptionsError,
  InvalidSubjectError,
  StreamConfigError,
  StreamFullError,
  StreamNotFoundError,
} from "./errors.js";
export {
  fanOutStream,
  federationOutboundStream,
  OUTBOUND_SCOUT_DURABLE,
  queueDeletedStream,
} from "./layout.js";
export { connectNatsBus, type NatsBusOptions, type NatsTlsOptions } from "./nats-bus.js";
export {
  type BusLayoutNames,
  DEFAULT_BUS_LAYOUT_NAMES,
  deploymentNatsUsers,
  NATS_SERVICES,
  type NatsPermissions,
  type NatsService,
  type NatsUser,
  natsAuthorization,
  natsPermissions,
} from "./nats-permissions.js";
export { assertPattern, assertSubject, matchesSubject, patternsOverlap, subjectMatcher } from "./subject.js";
export type * from "./types.js";
