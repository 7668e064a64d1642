import { busConfig } from "@phoenix/runtime/bus";
import {
  type Env,
  envAddressList,
  envDomain,
  envDuration,
  envEnum,
  envInt,
  envList,
  envSecretKey,
  envString,
  loadConfig,
  serviceConfig,
} from "@phoenix/runtime/config";
import { databaseConfig } from "@phoenix/runtime/db";
import { federationRouterConfig } from "@phoenix/runtime/federation";
import { adminListenerConfig } from "@phoenix/runtime/module";
import type { z } from "zod";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The AS environment: the runtime's service and database fragments plus the AS's own variables
 * (documented in services/auth/README.md and docs/auth-service.md).
 */
export const authConfigSchema = serviceConfig({
  serviceName: "auth",
  grpcPort: 50051,
  metricsPort: 9461,
}).extend({
  ...databaseConfig.shape,
  ...busConfig.shape,
  ...federationRouterConfig.shape,
  // The admin listener (phoenix.admin.v1.AuthAdminService) and the operator keys it accepts.
  ...adminListenerConfig.shape,
  /** The homeserver's domain: every user id this AS serves ends in it. */
  AS_DOMAIN: envDomain(),
  /** `open`, `invite` (an invite code from AS_INVITE_CODES is required) or `closed`. */
  AS_REGISTRATION: envEnum(["open", "invite", "closed"], { default: "open" }),
  /**
   * Comma-separated invite codes accepted when AS_REGISTRATION=invite; `code:N` admits N
   * registrations, a bare `code` AS_INVITE_CODE_USES.
   */
  AS_INVITE_CODES: envList({ default: [] }),
  /** Registrations one invite code admits unless its entry says otherwise (1: single-use). */
  AS_INVITE_CODE_USES: envInt({ default: 1, min: 1, max: 1_000_000_000 }),
  /**
   * The AS root signing key (32-byte Ed25519 seed, base64 or hex) and its root credential
   * (base64). Both or neither: without them the AS creates a root on first start and keeps it in
   * its database.
   */
  AS_ROOT_SIGNING_KEY: envString({ optional: true }),
  AS_ROOT_CREDENTIAL: envString({ optional: true }),
  /**
   * Required: 32-byte key (hex or base64, from a secret) that encrypts the AS signing keys kept
   * in the database; the AS's replay-marker key is derived from it. Plaintext keys left by older
   * versions are sealed at start. AS_KEY_ENCRYPTION_KEY_PREVIOUS: the key being rotated away from.
   */
  AS_KEY_ENCRYPTION_KEY: envSecretKey(),
  AS_KEY_ENCRYPTION_KEY_PREVIOUS: envSecretKey({ optional: true }),
  /** Lifetime of a root credential the AS creates itself. */
  AS_ROOT_LIFETIME: envDuration({ default: 3650 * DAY, min: HOUR }),
  /** Lifetime of an AS intermediate credential. */
  AS_INTERMEDIATE_LIFETIME: envDuration({ default: 365 * DAY, min: HOUR }),
  /** A new intermediate is created once the current one is this old (the old one stays valid). */
  AS_INTERMEDIATE_ROTATE_AFTER: envDuration({ default: 90 * DAY, min: 1 }),
  /** Longest validity a client credential may request (its CSR's notAfter - now). */
  AS_CLIENT_CREDENTIAL_MAX_LIFETIME: envDuration({ default: 180 * DAY, min: HOUR }),
  /** Replay window of signed requests: how old and how far ahead a request timestamp may be. */
  AS_REQUEST_MAX_AGE: envDuration({ default: 5 * 60_000, min: 1000 }),
  AS_REQUEST_MAX_FUTURE_SKEW: envDuration({ default: 60_000, min: 0 }),
  /** How long a handle lives after creation or its last refresh. */
  AS_HANDLE_LIFETIME: envDuration({ default: 30 * DAY, min: 60_000 }),
  /** Clients without an authenticated request for this long are deleted by the expiry job. */
  AS_CLIENT_INACTIVITY_LIMIT: envDuration({ default: 90 * DAY, min: HOUR }),
  /** Connection packages are dropped this long after publication (also bounded by their own lifetime). */
  AS_CONNECTION_PACKAGE_LIFETIME: envDuration({ default: 30 * DAY, min: 60_000 }),
  /** Period of the expiry job. */
  AS_EXPIRY_INTERVAL: envDuration({ default: HOUR, min: 1000 }),
  AS_MAX_CLIENTS_PER_USER: envInt({ default: 32, min: 1, max: 10_000 }),
  /** A connection queue holding this many messages refuses further offers (RESOURCE_EXHAUSTED, "queue full"). */
  AS_QUEUE_MAX_MESSAGES: envInt({ default: 1000, min: 1, max: 1_000_000 }),
  /**
   * A connection offer not dequeued this long after it was enqueued is deleted by the expiry job
   * (counted from the UTC day of the enqueue: stored at day precision).
   */
  AS_QUEUE_MESSAGE_TTL: envDuration({ default: 30 * DAY, min: DAY }),
  /** Most messages a dequeue returns. */
  AS_DEQUEUE_MAX_MESSAGES: envInt({ default: 500, min: 1, max: 10_000 }),
  /** Offers one target queue accepts per minute (in the AS database: shared by all replicas). */
  AS_ENQUEUE_RATE_PER_MINUTE: envInt({ default: 60, min: 1, max: 1_000_000 }),
  // Per-caller limits of the public RPCs (kept in the AS database: shared by all replicas; 0
  // disables one). The caller is the peer
  // address, or for a peer listed in AS_TRUSTED_PROXIES the client address it forwards in
  // `x-forwarded-for`.
  /** CheckHandleExists calls per caller per minute (slows handle enumeration). */
  AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: envInt({ default: 60, min: 0, max: 1_000_000 }),
  /** GetConnectionPackages + GetHandleConnectionPackage calls per caller per minute (package draining). */
  AS_CALLER_RATE_PACKAGES_PER_MINUTE: envInt({ default: 60, min: 0, max: 1_000_000 }),
  /**
   * GetConnectionPackages calls for one user (GetHandleConnectionPackage for one handle) per hour,
   * whoever the callers are: several callers together cannot drain one user's packages.
   */
  AS_TARGET_RATE_PACKAGES_PER_HOUR: envInt({ default: 30, min: 0, max: 1_000_000 }),
  /** GetUserProfile calls per caller per minute. */
  AS_CALLER_RATE_PROFILE_PER_MINUTE: envInt({ default: 120, min: 0, max: 1_000_000 }),
  /** EnqueueConnectionOffer + EnqueueHandleConnectionOffer calls per caller per minute. */
  AS_CALLER_RATE_ENQUEUE_PER_MINUTE: envInt({ default: 60, min: 0, max: 1_000_000 }),
  /** CreateHandle calls per caller per minute (each costs a memory-hard HandleHash). */
  AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE: envInt({ default: 30, min: 0, max: 1_000_000 }),
  /** RegisterUser calls per source address per hour. */
  AS_SOURCE_RATE_REGISTER_PER_HOUR: envInt({ default: 30, min: 0, max: 1_000_000 }),
  /**
   * StartPasswordLogin calls per caller per hour (each is one online password guess; counted
   * whatever the user id).
   */
  AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR: envInt({ default: 30, min: 0, max: 1_000_000 }),
  /**
   * StartPasswordLogin calls for one user id per hour, whoever the callers are and whether the
   * user exists or not: the online guesses anyone gets at one account's password.
   */
  AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR: envInt({ default: 10, min: 0, max: 1_000_000 }),
  /** A password login not finished this long after StartPasswordLogin fails (its state is deleted). */
  AS_PASSWORD_LOGIN_TIMEOUT: envDuration({ default: 5 * 60_000, min: 1000, max: HOUR }),
  /** How long the add-client grant of a password login may be used (once). */
  AS_PASSWORD_GRANT_LIFETIME: envDuration({ default: 10 * 60_000, min: 1000, max: DAY }),
  /** Peers (IP addresses or CIDR blocks: the edge and federation gateways) whose `x-forwarded-for` names the real caller. */
  AS_TRUSTED_PROXIES: envAddressList({ default: [] }),
  /**
   * Another domain's AS credentials are served from the AS database this long after they were
   * fetched through the federation gateway (past it, too, while that domain cannot be reached).
   */
  AS_REMOTE_CREDENTIALS_TTL: envDuration({ default: HOUR, min: 1000 }),
  /** The queue ratchet gets fresh randomness (a key update message) every this many messages. */
  AS_QUEUE_KEY_UPDATE_INTERVAL: envInt({ default: 100, min: 1, max: 1_000_000 }),
});

/** The parsed AS configuration. */
export type AuthConfig = z.output<typeof authConfigSchema>;

/** Parses the AS configuration from `env`; throws ConfigError naming every bad variable. */
export function loadAuthConfig(env: Env = process.env): AuthConfig {
  return loadConfig(authConfigSchema, env);
}
