import type { Bus } from "@phoenix/runtime/bus";
import type { Database } from "@phoenix/runtime/db";
import type { FederationRouter } from "@phoenix/runtime/federation";
import type { Logger } from "@phoenix/runtime/log";
import type { AddressMatcher, NamedRateLimit, SharedRateLimits } from "@phoenix/runtime/rate-limit";
import type { ReplayStore } from "@phoenix/runtime/replay";
import type { AsKeyring } from "./as-keyring.js";
import type { AuthConfig } from "./config.js";
import type { InviteCode } from "./domain/invite-codes.js";
import type { RequestWindow } from "./domain/request-header.js";
import type { PasswordKeys } from "./password-keys.js";
import type { RemoteAsCredentials } from "./remote-credentials.js";

/** Everything an RPC handler of the AS needs (`ctx`); built once when the AS starts. */
export interface AuthContext {
  readonly db: Database;
  readonly bus: Bus;
  readonly config: AuthConfig;
  readonly keyring: AsKeyring;
  readonly log: Logger;
  /** The service clock in ms since the epoch (tests move it to exercise expiry). */
  now(): number;
  readonly window: RequestWindow;
  /** AS_INVITE_CODES, parsed. */
  readonly inviteCodes: readonly InviteCode[];
  /** Rate limits, each named after its variable. */
  readonly limits: AuthRateLimits;
  /** The token buckets of every limit, in the AS database: shared by all replicas. */
  readonly rateLimits: SharedRateLimits;
  /** Peers whose `x-forwarded-for` metadata names the caller (AS_TRUSTED_PROXIES). */
  readonly trustedProxies: AddressMatcher;
  /** Request ids already accepted (phoenix_runtime.seen_requests). */
  readonly replay: ReplayStore;
  /** Sends requests about other domains through the federation gateway. */
  readonly router: FederationRouter;
  /** Other domains' AS credentials (GetAsCredentials for another domain). */
  readonly remoteCredentials: RemoteAsCredentials;
  /** The account-password secrets: the OPAQUE server, login-state sealing, audit tags. */
  readonly passwords: PasswordKeys;
}

/** The configured rate limits of the AS. */
export interface AuthRateLimits {
  /** Offers per target connection queue. */
  readonly enqueuePerTarget: NamedRateLimit;
  /** CheckHandleExists per caller. */
  readonly checkHandle: NamedRateLimit;
  /** Connection package fetches (by user id or handle) per caller. */
  readonly packageFetch: NamedRateLimit;
  /** Connection package fetches per target user or handle, whoever the callers are. */
  readonly packageFetchPerTarget: NamedRateLimit;
  /** GetUserProfile per caller. */
  readonly profileFetch: NamedRateLimit;
  /** Offers (to any queue) per caller. */
  readonly enqueuePerCaller: NamedRateLimit;
  /** CreateHandle per caller (each costs a memory-hard hash). */
  readonly createHandle: NamedRateLimit;
  /** RegisterUser per source address. */
  readonly register: NamedRateLimit;
  /** StartPasswordLogin per caller. */
  readonly passwordLogin: NamedRateLimit;
  /** StartPasswordLogin per user id, whoever the callers are. */
  readonly passwordLoginPerUser: NamedRateLimit;
}
