export {
  claimSeenRequest,
  ReplayStore,
  ReplayStoreError,
  seenRequestMarker,
  sweepSeenRequests,
} from "./replay-store.js";
export { seenRequests } from "./schema.js";
