export {
  claimSeenRequest,
  ReplayStore,
  ReplayStoreError,
  seenRequestMarker,
  seenRequestRecorded,
  sweepSeenRequests,
} from "./replay-store.js";
export { seenRequests } from "./schema.js";
