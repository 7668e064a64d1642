export { type BusConfig, BusConfigError, busConfig, type OpenBusOptions, openBus } from "./config.js";
export { createEmbeddedBus, type EmbeddedBusOptions } from "./embedded-bus.js";
export {
  BusClosedError,
  BusOptionsError,
  InvalidSubjectError,
  StreamConfigError,
  StreamNotFoundError,
} from "./errors.js";
export { connectNatsBus, type NatsBusOptions } from "./nats-bus.js";
export { assertPattern, assertSubject, matchesSubject, patternsOverlap, subjectMatcher } from "./subject.js";
export type * from "./types.js";
