import { fileURLToPath } from "node:url";
import type { Bus } from "@phoenix/runtime/bus";
import type { Database } from "@phoenix/runtime/db";
import { type FederationRouter, serviceFederationRouter } from "@phoenix/runtime/federation";
import type { ServiceRegistration } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import { parseOperatorKeys, type Worker } from "@phoenix/runtime/module";
import { NamedRateLimit, SharedRateLimits, trustedProxies } from "@phoenix/runtime/rate-limit";
import { ReplayStore } from "@phoenix/runtime/replay";
import { adminRoutes } from "./admin/routes.js";
import { AsKeyring } from "./as-keyring.js";
import type { AuthConfig } from "./config.js";
import type { AuthContext, AuthRateLimits } from "./context.js";
import { AsKeyConfigError, parseConfiguredRoot } from "./domain/as-keys.js";
import { parseInviteCodes } from "./domain/invite-codes.js";
import { KeyEncryption } from "./domain/key-encryption.js";
import { ExpiryJob } from "./expiry.js";
import { PasswordKeys } from "./password-keys.js";
import { RemoteAsCredentials } from "./remote-credentials.js";
import { authRoutes } from "./routes.js";

/** The AS's drizzle-kit migrations, applied by openDatabase / createTestDatabase. */
export const authMigrationsFolder: string = fileURLToPath(new URL("../migrations", import.meta.url));

export interface AuthServiceOptions {
  /** The AS's own database, migrated (`authMigrationsFolder`). */
  db: Database;
  /** Wakes connection-queue listeners across replicas. */
  bus: Bus;
  config: AuthConfig;
  log: Logger;
  /** Service clock in ms since the epoch (default: Date.now); tests move it to exercise expiry. */
  now?: () => number;
  /**
   * Sends requests about other domains through the federation gateway; the caller closes it.
   * Default: one built from FEDERATION_PROXY_ADDRESS, closed with the service.
   */
  router?: FederationRouter;
}

/** A built AS: the gRPC registration plus what an operator or test drives directly. */
export interface AuthService {
  readonly registration: ServiceRegistration;
  /** phoenix.admin.v1.AuthAdminService, for the admin listener only. */
  readonly adminRegistration: ServiceRegistration;
  readonly keyring: AsKeyring;
  readonly expiry: ExpiryJob;
  /** The background work for the runner to start and stop: the expiry job. */
  readonly workers: readonly Worker[];
  /** Closes the router it built (the workers are stopped before; the database and bus belong to the caller). */
  close(): Promise<void>;
}

/**
 * Builds the Authentication Service on a database and a bus: loads or creates the AS key
 * material and binds every RPC (routes.ts); its expiry job is a worker `authModule` declares.
 */
export async function createAuthService(options: AuthServiceOptions): Promise<AuthService> {
  const { config, db } = options;
  const now = options.now ?? Date.now;
  const configuredRoot =
    config.AS_ROOT_SIGNING_KEY !== undefined || config.AS_ROOT_CREDENTIAL !== undefined
      ? parseConfiguredRoot(
          config.AS_ROOT_SIGNING_KEY ?? "",
          config.AS_ROOT_CREDENTIAL ?? "",
          config.AS_DOMAIN,
          now(),
        )
      : undefined;
  // The configuration requires AS_KEY_ENCRYPTION_KEY: the signing keys in the database are
  // always sealed, and the replay markers are keyed with a secret of this deployment.
  const keyEncryption = new KeyEncryption(
    config.AS_KEY_ENCRYPTION_KEY,
    config.AS_KEY_ENCRYPTION_KEY_PREVIOUS,
  );
  const keyring = new AsKeyring({
    db,
    domain: config.AS_DOMAIN,
    policy: {
      rootLifetimeMs: config.AS_ROOT_LIFETIME,
      intermediateLifetimeMs: config.AS_INTERMEDIATE_LIFETIME,
      rotateAfterMs: config.AS_INTERMEDIATE_ROTATE_AFTER,
      clientMaxLifetimeMs: config.AS_CLIENT_CREDENTIAL_MAX_LIFETIME,
    },
    ...(configuredRoot ? { configuredRoot } : {}),
    keyEncryption,
    now,
  });
  await keyring.init();
  const passwords = await PasswordKeys.open(
    db,
    config.AS_KEY_ENCRYPTION_KEY,
    config.AS_KEY_ENCRYPTION_KEY_PREVIOUS,
  );
  // Buckets keyed by HMACs under a key derived from AS_KEY_ENCRYPTION_KEY, so a database copy
  // alone cannot test a bucket against a guessed address or user id.
  const rateLimitStore = await SharedRateLimits.open(db, {
    secret: new TextEncoder().encode(config.AS_KEY_ENCRYPTION_KEY),
  });
  const { router, owned } = serviceFederationRouter(config, config.AS_DOMAIN, options.router);
  const ctx: AuthContext = {
    db,
    bus: options.bus,
    config,
    keyring,
    log: options.log,
    now,
    window: { maxAgeMs: config.AS_REQUEST_MAX_AGE, maxFutureSkewMs: config.AS_REQUEST_MAX_FUTURE_SKEW },
    inviteCodes: parseInviteCodes(config.AS_INVITE_CODES, config.AS_INVITE_CODE_USES),
    limits: rateLimits(config),
    rateLimits: rateLimitStore,
    trustedProxies: trustedProxies(config.AS_TRUSTED_PROXIES),
    replay: replayStore(keyEncryption),
    router,
    remoteCredentials: new RemoteAsCredentials({
      db,
      router,
      ttlMs: config.AS_REMOTE_CREDENTIALS_TTL,
      log: options.log,
      now,
    }),
    passwords,
  };
  const registration = authRoutes(ctx);
  const adminRegistration = adminRoutes({
    ...ctx,
    operatorKeys: parseOperatorKeys(config.ADMIN_OPERATOR_KEYS),
  });
  const expiry = new ExpiryJob({
    db,
    intervalMs: config.AS_EXPIRY_INTERVAL,
    lifetimes: {
      clientInactivityMs: config.AS_CLIENT_INACTIVITY_LIMIT,
      credentialMaxLifetimeMs: Math.max(
        config.AS_INTERMEDIATE_LIFETIME,
        config.AS_CLIENT_CREDENTIAL_MAX_LIFETIME,
      ),
      auditRetentionMs: config.ADMIN_AUDIT_RETENTION,
    },
    now,
    log: options.log,
  });
  return {
    registration,
    adminRegistration,
    keyring,
    expiry,
    workers: [expiry],
    async close() {
      if (owned) router.close();
    },
  };
}

const MINUTE = 60_000;

/**
 * The AS's replay markers are keyed with a key derived from AS_KEY_ENCRYPTION_KEY (one secret
 * less to manage): a database snapshot alone cannot test a marker against a guessed request, and
 * markers differ between deployments. Markers under the previous key still count while it rotates.
 */
function replayStore(keyEncryption: KeyEncryption): ReplayStore {
  const [current, ...previous] = keyEncryption.replayMarkerKeys();
  if (!current) throw new AsKeyConfigError("no replay-marker key could be derived");
  return new ReplayStore(current, previous);
}

/** The rate limits from the configuration (each named after its variable in refusals). */
function rateLimits(config: AuthConfig): AuthRateLimits {
  return {
    enqueuePerTarget: new NamedRateLimit(
      "connection offers to this queue",
      "AS_ENQUEUE_RATE_PER_MINUTE",
      config.AS_ENQUEUE_RATE_PER_MINUTE,
      MINUTE,
    ),
    checkHandle: new NamedRateLimit(
      "handle lookups per caller",
      "AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE",
      config.AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE,
      MINUTE,
    ),
    packageFetch: new NamedRateLimit(
      "connection package fetches per caller",
      "AS_CALLER_RATE_PACKAGES_PER_MINUTE",
      config.AS_CALLER_RATE_PACKAGES_PER_MINUTE,
      MINUTE,
    ),
    packageFetchPerTarget: new NamedRateLimit(
      "connection package fetches for this user or handle",
      "AS_TARGET_RATE_PACKAGES_PER_HOUR",
      config.AS_TARGET_RATE_PACKAGES_PER_HOUR,
      60 * MINUTE,
    ),
    profileFetch: new NamedRateLimit(
      "profile lookups per caller",
      "AS_CALLER_RATE_PROFILE_PER_MINUTE",
      config.AS_CALLER_RATE_PROFILE_PER_MINUTE,
      MINUTE,
    ),
    enqueuePerCaller: new NamedRateLimit(
      "connection offers per caller",
      "AS_CALLER_RATE_ENQUEUE_PER_MINUTE",
      config.AS_CALLER_RATE_ENQUEUE_PER_MINUTE,
      MINUTE,
    ),
    createHandle: new NamedRateLimit(
      "handle creations per caller",
      "AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE",
      config.AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE,
      MINUTE,
    ),
    register: new NamedRateLimit(
      "registrations per source address",
      "AS_SOURCE_RATE_REGISTER_PER_HOUR",
      config.AS_SOURCE_RATE_REGISTER_PER_HOUR,
      60 * MINUTE,
    ),
    passwordLogin: new NamedRateLimit(
      "password logins per caller",
      "AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR",
      config.AS_CALLER_RATE_PASSWORD_LOGIN_PER_HOUR,
      60 * MINUTE,
    ),
    passwordLoginPerUser: new NamedRateLimit(
      "password logins for this user",
      "AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR",
      config.AS_TARGET_RATE_PASSWORD_LOGIN_PER_HOUR,
      60 * MINUTE,
    ),
  };
}
