export {
  OutboxPublishError,
  OutboxRelay,
  type OutboxRelayOptions,
  outboxBacklog,
  type RelayCycle,
} from "./relay.js";
export { outbox, runtimeSchema } from "./schema.js";
export { type OutboxMessage, OutboxMessageError, writeOutbox } from "./write-outbox.js";
