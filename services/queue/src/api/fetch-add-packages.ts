import { toHex } from "@phoenix/crypto";
import type { queue } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { CallContext } from "@phoenix/runtime/grpc";
import { unknownFriendshipToken } from "../domain/errors.js";
import { HashPurpose, StorageLabel } from "../domain/storage-keys.js";
import { checkDomain, friendshipToken } from "../domain/validate.js";
import { takeAddPackage } from "../store/add-packages.js";
import { clientsOf } from "../store/clients.js";
import { findUserByTokenHash } from "../store/users.js";
import { limitCaller } from "./caller-limit.js";
import type { QueueContext } from "./context.js";

/**
 * The domain whose QS serves a FetchAddPackages request (`domain`, empty: this one); a request for
 * another domain is forwarded there through the federation gateway (service.ts).
 */
export function fetchAddPackagesDomain(request: queue.FetchAddPackagesRequest): string {
  return request.domain === "" ? "" : checkDomain(request.domain, "domain");
}

/**
 * Charges a FetchAddPackages call to its caller — also one for another domain, before it leaves
 * (the peer limits forwarded calls per origin domain).
 */
export function limitFetchAddPackages(ctx: QueueContext, call: CallContext): void {
  limitCaller(ctx, ctx.rateLimits.fetchAddPackagesPerCaller, call);
}

/**
 * FetchAddPackages (for this domain): one AddPackage per client of the user holding the
 * friendship token. An ordinary one is consumed (deleted); when none is left the last-resort one
 * is returned and kept. Expired ones are never handed out: a client left with none is missing
 * from the answer (an adder cannot use an expired KeyPackage, so it must not get one). Rate-limited per caller ({@link limitFetchAddPackages}) and per
 * friendship token, so nobody holding a token can drain a user's ordinary AddPackages.
 */
export async function fetchAddPackages(
  ctx: QueueContext,
  request: queue.FetchAddPackagesRequest,
): Promise<queue.FetchAddPackagesResponse> {
  const token = friendshipToken(request.friendshipToken, "friendship_token");
  const tokenHash = ctx.storage.hash(HashPurpose.FriendshipTokenLookup, token);
  // Keyed by the token's lookup hash: the limiter holds no token in memory.
  ctx.rateLimits.fetchAddPackagesPerToken.take(toHex(tokenHash), ctx.now());
  const user = await findUserByTokenHash(ctx.db, tokenHash);
  if (user === undefined) throw unknownFriendshipToken();
  const clients = await clientsOf(ctx.db, user.userId);
  const packages: Uint8Array[] = [];
  const now = new Date(ctx.now());
  await transaction(ctx.db, async (tx) => {
    packages.length = 0;
    for (const client of clients) {
      const encrypted = await takeAddPackage(tx, client.clientId, now);
      if (encrypted !== undefined) {
        packages.push(ctx.storage.open(StorageLabel.AddPackage, encrypted, client.clientId));
      }
    }
  });
  return { addPackages: packages };
}
