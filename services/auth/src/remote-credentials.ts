import { status } from "@grpc/grpc-js";
import { auth } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { RpcError } from "@phoenix/runtime/errors";
import type { FederationRouter } from "@phoenix/runtime/federation";
import type { CallContext } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import { checkRemoteCredentials } from "./domain/remote-credentials.js";
import { findRemoteAsCredentials, storeRemoteAsCredentials } from "./store/remote-as-credentials.js";

export interface RemoteAsCredentialsOptions {
  db: Database;
  router: FederationRouter;
  /** How long a fetched answer is served without asking the domain again (AS_REMOTE_CREDENTIALS_TTL). */
  ttlMs: number;
  log: Logger;
  /** Clock in ms since the epoch. */
  now: () => number;
}

/**
 * Other domains' AS credentials for GetAsCredentials, so clients (and this AS) can verify
 * credential chains of users on other homeservers. Answers come from the AS database
 * (`remote_as_credentials`, shared by the replicas) while younger than the TTL; otherwise they are
 * fetched through the federation gateway, checked (domain, self-signed roots, intermediates
 * signed by them) and stored. While the domain cannot be reached, an expired answer is still
 * served (logged): the roots are long-lived, and a revocation published meanwhile arrives with
 * the next successful fetch.
 */
export class RemoteAsCredentials {
  constructor(private readonly options: RemoteAsCredentialsOptions) {}

  /** The credentials of `domain` (another homeserver's). */
  async get(domain: string, ctx: CallContext): Promise<auth.GetAsCredentialsResponse> {
    const { db, router, ttlMs, log } = this.options;
    const cached = await findRemoteAsCredentials(db, domain);
    const now = this.options.now();
    if (cached && now - cached.fetchedAt.getTime() < ttlMs) {
      return auth.GetAsCredentialsResponse.decode(cached.response);
    }
    let answer: auth.GetAsCredentialsResponse;
    try {
      answer = await router.forward(auth.AuthServiceService.getAsCredentials, domain, { domain }, ctx);
    } catch (error) {
      if (cached && isUnreachable(error)) {
        log.warn(
          { err: error, domain, fetchedAt: cached.fetchedAt.toISOString() },
          "serving expired AS credentials: the domain cannot be reached",
        );
        return auth.GetAsCredentialsResponse.decode(cached.response);
      }
      throw error;
    }
    checkRemoteCredentials(answer, domain, now);
    await storeRemoteAsCredentials(db, {
      domain,
      response: auth.GetAsCredentialsResponse.encode(answer).finish(),
      fetchedAt: new Date(now),
    });
    return answer;
  }
}

/** The peer (or our gateway, or the way to it) is down, as opposed to refusing the request. */
function isUnreachable(error: unknown): boolean {
  return (
    error instanceof RpcError &&
    (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED)
  );
}
