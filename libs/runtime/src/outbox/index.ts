export {
  OutboxPublishError,
  OutboxRelay,
  type OutboxRelayOptions,
  outboxBacklog,
  type RelayCycle,
} from "./relay.js";
export { outbox, runtimeSchema } from "./schema.js";
export {
  type ClaimedWrite,
  claimAndWriteOutbox,
  type OutboxMessage,
  OutboxMessageError,
  type SeenRequestClaim,
  writeOutbox,
} from "./write-outbox.js";
