import { common } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { claimSeenRequest } from "@phoenix/runtime/replay";
import { unauthenticated } from "../domain/errors.js";
import type { OpenedRequest } from "../domain/signed-request.js";
import { HashPurpose } from "../domain/storage-keys.js";
import type { QsDeps } from "./deps.js";

/** Claims a verified request's id; call it inside the transaction that does the request's work. */
export type RequestClaim = (tx: Database) => Promise<void>;

/**
 * The claim of a verified request: its id, scoped to the sender, is recorded in the database in
 * the caller's transaction until its timestamp leaves the replay window, so a replay is refused
 * by every replica and a request whose transaction rolled back can be retried as it is.
 */
export function requestClaim(deps: QsDeps, opened: OpenedRequest<unknown>, scope: Uint8Array): RequestClaim {
  const marker = deps.storage.hash(HashPurpose.SeenRequest, scope, opened.header.requestId);
  const expiresAt = new Date((opened.header.timestamp?.getTime() ?? 0) + deps.replayWindow.maxAgeMs);
  return async (tx) => {
    if (!(await claimSeenRequest(tx, marker, expiresAt))) {
      throw unauthenticated(common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST, "request id already used");
    }
  };
}
