import { busConfig, busTopology } from "@phoenix/runtime/bus";
import {
  envAddressList,
  envBool,
  envDomain,
  envDuration,
  envEnum,
  envInt,
  envList,
  envString,
  envUrl,
  serviceConfig,
} from "@phoenix/runtime/config";
import { databaseConfig } from "@phoenix/runtime/db";
import { federationRouterConfig } from "@phoenix/runtime/federation";
import { adminListenerConfig } from "@phoenix/runtime/module";
import type { z } from "zod";
import { WebhookAddressPolicy, WebhookAllowlistError } from "./domain/webhook-address.js";

const DAY = 24 * 3600 * 1000;
/** The defaults of the bus variables: a deployment's names. */
const BUS = busTopology();

function validAllowlist(entries: string[]): boolean {
  try {
    new WebhookAddressPolicy(entries);
    return true;
  } catch (error) {
    if (error instanceof WebhookAllowlistError) return false;
    throw error;
  }
}

/** The QS's environment (documented for operators in docs/queue-service.md). */
export const queueConfigSchema = serviceConfig({ serviceName: "queue", grpcPort: 50053, metricsPort: 9467 })
  .extend({
    /** The homeserver's domain: sealed queue configs and fan-out recipients of it are local. */
    QS_DOMAIN: envDomain(),
    /**
     * 32-byte root secret (64 hex chars) that encrypts everything the QS keeps at rest: its own
     * private keys, ratchet states, push tokens, AddPackages, friendship tokens. Unset: read from
     * or created in `$DATA_DIR/queue/storage.key`.
     */
    QS_STORAGE_KEY: envString({
      optional: true,
      pattern: /^[0-9a-fA-F]{64}$/,
      patternHint: "must be 64 hex characters",
    }),
    /** Optional: the queue-config HPKE private key (64 hex chars) instead of a generated one. */
    QS_QUEUE_CONFIG_PRIVATE_KEY: envString({
      optional: true,
      pattern: /^[0-9a-fA-F]{64}$/,
      patternHint: "must be 64 hex characters",
    }),
    /** Optional: the signing key's Ed25519 seed (64 hex chars) instead of a generated one. */
    QS_SIGNING_KEY_SEED: envString({
      optional: true,
      pattern: /^[0-9a-fA-F]{64}$/,
      patternHint: "must be 64 hex characters",
    }),
    /** Generated keys are replaced after this long (0: never). */
    QS_KEY_ROTATION_INTERVAL: envDuration({ default: 180 * DAY, min: 0 }),
    /** A retired queue-config key keeps opening sealed configs this long after its rotation. */
    QS_KEY_RETIREMENT_GRACE: envDuration({ default: 365 * DAY, min: 0 }),
    /** Maximum client records per user record. */
    QS_MAX_CLIENTS_PER_USER: envInt({ default: 10, min: 1, max: 1000 }),
    /**
     * Messages a client queue holds at most: fan-outs to a full queue are dropped (counted in
     * qs_fanout_dropped_total; the owner sees a sequence-number gap). Key updates still go in.
     */
    QS_MAX_QUEUE_DEPTH: envInt({ default: 10_000, min: 1, max: 10_000_000 }),
    /** Queued messages expire this long after they were enqueued (0: never; key updates never). */
    QS_MESSAGE_EXPIRY: envDuration({ default: 30 * DAY, min: 0 }),
    /** Dequeue returns at most this many messages. */
    QS_MAX_DEQUEUE: envInt({ default: 500, min: 1, max: 10_000 }),
    /** A queue ratchet key update after this many messages. */
    QS_RATCHET_UPDATE_MESSAGES: envInt({ default: 100, min: 1 }),
    /** … or when the last update is older than this. */
    QS_RATCHET_UPDATE_INTERVAL: envDuration({ default: DAY, min: 1000 }),
    /**
     * How often queues idle for QS_RATCHET_UPDATE_INTERVAL get their time-based key update (0:
     * only when their next message arrives).
     */
    QS_IDLE_KEY_UPDATE_CHECK_INTERVAL: envDuration({ default: 3600_000, min: 0 }),
    /**
     * An AddPackage is handed out at most this long after its publication (and never past its
     * KeyPackage's own lifetime); the sweep deletes it then.
     */
    QS_ADD_PACKAGE_LIFETIME: envDuration({ default: 90 * DAY, min: 60_000 }),
    /** Client records without a request for this long expire (with their queues). */
    QS_CLIENT_INACTIVITY: envDuration({ default: 90 * DAY, min: 60_000 }),
    /**
     * A client auth key replaced by UpdateClient keeps verifying queue configs sealed with it
     * (held by DS groups and KeyPackages) this long (0: not at all).
     */
    QS_AUTH_KEY_GRACE: envDuration({ default: 30 * DAY, min: 0 }),
    // Per-caller / per-token limits of the unauthenticated RPCs (per replica; 0 disables one).
    // The caller is the peer address, or for a peer in QS_TRUSTED_PROXIES the client address it
    // forwards in `x-forwarded-for`.
    /** FetchAddPackages per friendship token per minute (stops draining a user's AddPackages). */
    QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN: envInt({ default: 20, min: 0, max: 1_000_000 }),
    /** FetchAddPackages per caller per minute. */
    QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: envInt({ default: 60, min: 0, max: 1_000_000 }),
    /** CreateUser per caller per hour. */
    QS_RATE_CREATE_USER_PER_CALLER: envInt({ default: 30, min: 0, max: 1_000_000 }),
    /** Peers (IP addresses or CIDR blocks: the edge and federation gateways) whose `x-forwarded-for` names the caller. */
    QS_TRUSTED_PROXIES: envAddressList({ default: [] }),
    /** Blocklist entries per queue. */
    QS_MAX_BLOCKLIST: envInt({ default: 10_000, min: 1 }),
    /**
     * A handled fan-out's marker (what makes a redelivery a no-op) is kept this long, then swept;
     * a copy of the fan-out redelivered later would be enqueued again.
     */
    QS_FANOUT_MARKER_RETENTION: envDuration({ default: 30 * DAY, min: 3600_000 }),
    /** Fan-out consumer: messages handled at once (and so the largest batch per transaction). */
    QS_FANOUT_MAX_IN_FLIGHT: envInt({ default: 256, min: 1, max: 10_000 }),
    /** Stream of `phoenix.fanout` (shared with the DS and the federation gateway). */
    QS_FANOUT_STREAM: envString({ default: BUS.streams.fanOut }),
    /** Stream of `phoenix.queue_deleted`. */
    QS_QUEUE_DELETED_STREAM: envString({ default: BUS.streams.queueDeleted }),
    /** Stream of `phoenix.federation.outbound.>`. */
    QS_FEDERATION_STREAM: envString({ default: BUS.streams.federation }),
    /**
     * Prefix of every bus subject (`<prefix>phoenix.fanout`, …): empty in deployments; set (e.g.
     * `run42.`, dot-terminated) to keep several homeservers or test runs on one NATS apart, like
     * DS_FANOUT_SUBJECT and FEDERATION_SUBJECT_PREFIX.
     */
    QS_SUBJECT_PREFIX: envString({
      default: BUS.subjectPrefix,
      pattern: /^([A-Za-z0-9_-]+\.)*$/,
      patternHint: "must be empty or dot-terminated subject tokens",
    }),
    /** Durable consumer name shared by all replicas. */
    QS_FANOUT_DURABLE: envString({ default: BUS.durables.queueFanOut }),
    /**
     * Webhook tokens: "log" (log only) or "webhook" (POST to PUSH_PROVIDER_WEBHOOK URLs). APNs and
     * FCM tokens are pushed when QS_PUSH_APNS_* / QS_PUSH_FCM_* configure their provider, else
     * logged.
     */
    QS_PUSH_NOTIFIER: envString({
      default: "log",
      pattern: /^(log|webhook)$/,
      patternHint: "must be log or webhook",
    }),
    /** Allow plain http:// webhook URLs (development only). */
    QS_PUSH_WEBHOOK_ALLOW_HTTP: envBool({ default: false }),
    /**
     * Webhook hosts (names) and IP addresses / CIDR blocks a push webhook may reach although they
     * are private, loopback or link-local (e.g. a push relay inside the cluster). Everything else
     * non-public is refused after DNS resolution (SSRF).
     */
    QS_PUSH_WEBHOOK_ALLOW: envList({ default: [] }).refine(validAllowlist, {
      message: "each entry must be a host name, an IP address or a CIDR block",
    }),
    /**
     * A queue gets at most one push per this interval while messages keep arriving (the first at
     * once, one more at the interval's end for what came after; per replica; 0: every delivery).
     */
    QS_PUSH_MIN_INTERVAL: envDuration({ default: 10_000, min: 0 }),
    /** How long APNs / FCM keep a push for a device that is offline (0: now or never). */
    QS_PUSH_TTL: envDuration({ default: DAY, min: 0, max: 28 * DAY }),
    /** Extra trusted CA certificates (PEM file) for the APNs / FCM connections (a relay, tests). */
    QS_PUSH_CA_FILE: envString({ optional: true }),
    /** APNs: the .p8 signing key (PEM) of the Apple developer account; set: APNs tokens are pushed. */
    QS_PUSH_APNS_KEY_FILE: envString({ optional: true }),
    /** APNs: the signing key's id (10 characters). */
    QS_PUSH_APNS_KEY_ID: envString({
      optional: true,
      pattern: /^[A-Z0-9]{10}$/,
      patternHint: "must be 10 characters A-Z0-9",
    }),
    /** APNs: the Apple developer team id (10 characters). */
    QS_PUSH_APNS_TEAM_ID: envString({
      optional: true,
      pattern: /^[A-Z0-9]{10}$/,
      patternHint: "must be 10 characters A-Z0-9",
    }),
    /** APNs: the app's bundle id (`apns-topic`). */
    QS_PUSH_APNS_TOPIC: envString({ optional: true }),
    /** APNs: production or sandbox (development builds of the app). */
    QS_PUSH_APNS_ENVIRONMENT: envEnum(["production", "sandbox"], { default: "production" }),
    /** APNs: "alert" (mutable-content, filled by the app's notification service extension) or "background". */
    QS_PUSH_APNS_PUSH_TYPE: envEnum(["alert", "background"], { default: "alert" }),
    /** APNs: another origin than the environment's (a relay, tests). */
    QS_PUSH_APNS_BASE_URL: envUrl({ optional: true, protocols: ["https"] }),
    /** FCM: the Google service-account key file (JSON); set: FCM tokens are pushed. */
    QS_PUSH_FCM_SERVICE_ACCOUNT_FILE: envString({ optional: true }),
    /** FCM: another origin than https://fcm.googleapis.com (a relay, tests). */
    QS_PUSH_FCM_BASE_URL: envUrl({ optional: true, protocols: ["https"] }),
    /** FCM: another OAuth token endpoint than the service account's token_uri (tests). */
    QS_PUSH_FCM_TOKEN_URI: envUrl({ optional: true, protocols: ["https"] }),
  })
  // The admin listener (phoenix.admin.v1.QueueAdminService) and the operator keys it accepts.
  .extend(adminListenerConfig.shape)
  .extend(databaseConfig.shape)
  .extend(busConfig.shape)
  .extend(federationRouterConfig.shape);

export type QueueConfig = z.output<typeof queueConfigSchema>;
