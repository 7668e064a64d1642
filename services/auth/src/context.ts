import type { Bus } from "@phoenix/runtime/bus";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import type { AsKeyring } from "./as-keyring.js";
import type { AuthConfig } from "./config.js";
import type { RateLimiter } from "./domain/rate-limiter.js";
import type { RequestWindow } from "./domain/request-header.js";

/** Everything an RPC handler of the AS needs; built once by createAuthService. */
export interface AuthContext {
  readonly db: Database;
  readonly bus: Bus;
  readonly config: AuthConfig;
  readonly keyring: AsKeyring;
  readonly log: Logger;
  /** The service clock (tests move it to exercise expiry). */
  now(): Date;
  readonly window: RequestWindow;
  /** Offers per target queue. */
  readonly enqueueLimiter: RateLimiter;
}
