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
  type BusSubjects,
  type BusTopology,
  busSubjects,
  busTopology,
  domainOfPeerSubjectToken,
  fanOutStream,
  federationOutboundStream,
  federationOutboundSubject,
  OUTBOUND_SCOUT_DURABLE,
  outboundLaneDurable,
  peerSubjectToken,
  queueDeletedStream,
} from "./layout.js";
export { connectNatsBus, type NatsBusOptions, type NatsTlsOptions } from "./nats-bus.js";
export {
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
