import { busConfig, busTopology } from "@phoenix/runtime/bus";
import {
  envBool,
  envDomain,
  envDuration,
  envEnum,
  envInt,
  envList,
  envPort,
  envSecretKey,
  envString,
  serviceConfig,
} from "@phoenix/runtime/config";
import { databaseConfig } from "@phoenix/runtime/db";
import { adminListenerConfig } from "@phoenix/runtime/module";
import type { z } from "zod";

const DAY = 24 * 3600 * 1000;
/** The defaults of the bus variables: a deployment's names. */
const BUS = busTopology();
const NAME = { pattern: /^[A-Za-z0-9_-]{1,64}$/, patternHint: "must be letters, digits, _ and -" };
const ADDRESS = { pattern: /^\S+:\d{1,5}$/, patternHint: "must be host:port" };
const PREFIX = {
  pattern: /^([A-Za-z0-9_-]+\.)*$/,
  patternHint: "must be empty or dot-terminated subject tokens",
};

/** The gateway's environment (see docs/federation.md). */
export const gatewayConfigSchema = serviceConfig({
  serviceName: "federation-gateway",
  grpcPort: 8443,
  metricsPort: 9468,
})
  .extend({
    /** This homeserver's domain. */
    FEDERATION_DOMAIN: envDomain(),
    /** Static domain map `domain=host:port,…`: overrides DNS discovery per domain. */
    FEDERATION_PEERS: envList({ default: [] }),
    /** Resolve peers through the static map only (private federations, tests). */
    FEDERATION_STATIC_ONLY: envBool({ default: false }),
    /** `allowlist` (default): only FEDERATION_ALLOWED_DOMAINS; `open`: all but FEDERATION_DENIED_DOMAINS. */
    FEDERATION_POLICY: envEnum(["allowlist", "open"] as const, { default: "allowlist" }),
    FEDERATION_ALLOWED_DOMAINS: envList({ default: [] }),
    FEDERATION_DENIED_DOMAINS: envList({ default: [] }),
    /**
     * How often every replica reloads the policy an operator set at runtime (admin
     * SetFederationPolicy, stored in the database; default 2 s). Until one is set, the three
     * variables above are the policy.
     */
    FEDERATION_POLICY_REFRESH: envDuration({ default: 2000, min: 100 }),
    /** Per-peer token bucket: sustained requests per second and burst. */
    FEDERATION_PEER_RATE: envInt({ default: 200, min: 1 }),
    FEDERATION_PEER_BURST: envInt({ default: 400, min: 1 }),
    /** TLS of the public listener and of calls to peers (PEM files). */
    FEDERATION_TLS_CERT_FILE: envString({ optional: true }),
    FEDERATION_TLS_KEY_FILE: envString({ optional: true }),
    /** CA bundle that peers' certificates must chain to (default: the system roots). */
    FEDERATION_TLS_CA_FILE: envString({ optional: true }),
    /** Require and verify client certificates of peers (mutual TLS). */
    FEDERATION_MTLS: envBool({ default: false }),
    /** Plaintext gRPC between gateways: only for tests and local development, never in production. */
    FEDERATION_INSECURE_PLAINTEXT: envBool({ default: false }),
    /** The internal listener (FederationProxyService) for this homeserver's services. */
    FEDERATION_INTERNAL_HOST: envString({ default: "127.0.0.1" }),
    FEDERATION_INTERNAL_PORT: envPort({ default: 50055 }),
    /** Local services that serve forwarded client requests (host:port, plaintext, homeserver network). */
    FEDERATION_AS_ADDRESS: envString({ optional: true, ...ADDRESS }),
    FEDERATION_DS_ADDRESS: envString({ optional: true, ...ADDRESS }),
    FEDERATION_QS_ADDRESS: envString({ optional: true, ...ADDRESS }),
    /**
     * Required: 32-byte key (hex or base64, from a secret) that encrypts the signing-key seeds
     * stored in the database; the gateway's replay-marker key is derived from it. Plaintext seeds
     * left by older versions are sealed at start. `_PREVIOUS`: the key being rotated away from.
     */
    FEDERATION_KEY_ENCRYPTION_KEY: envSecretKey(),
    FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS: envSecretKey({ optional: true }),
    /** Operator-provided Ed25519 seed (64 hex chars); default: generated and stored (sealed) in the database. */
    FEDERATION_SIGNING_KEY: envString({
      optional: true,
      pattern: /^[0-9a-fA-F]{64}$/,
      patternHint: "must be 64 hex characters",
    }),
    /** A generated key signs this long before the next one takes over (default 30 days). */
    FEDERATION_KEY_ROTATION: envDuration({ default: 30 * DAY, min: 1000 }),
    /** A retired key stays valid this long (default 2 days; longer than FEDERATION_PEER_KEY_TTL). */
    FEDERATION_KEY_OVERLAP: envDuration({ default: 2 * DAY, min: 1000 }),
    /** How often replicas reload their keys and rotate when due (default 1 minute). */
    FEDERATION_KEY_REFRESH: envDuration({ default: 60_000, min: 100 }),
    /** Peers' key lists are cached this long (default 1 hour). */
    FEDERATION_PEER_KEY_TTL: envDuration({ default: 3600_000, min: 1000 }),
    /** At most one refetch per peer this often when a signature matches no cached key (default 10 s). */
    FEDERATION_PEER_KEY_REFETCH: envDuration({ default: 10_000, min: 0 }),
    /**
     * Peer domains each in-memory cache holds (peer keys, refetch marks, DNS answers), least
     * recently used dropped first (default 10000): in open federation, senders choose the domains.
     */
    FEDERATION_PEER_CACHE_MAX: envInt({ default: 10_000, min: 1 }),
    /** A DNS answer (SRV record) for a peer's gateway is reused this long (default 5 minutes). */
    FEDERATION_DNS_CACHE_TTL: envDuration({ default: 300_000, min: 1000 }),
    /** Open gRPC channels to peer gateways, least recently used closed first (default 1000). */
    FEDERATION_PEER_CHANNELS_MAX: envInt({ default: 1000, min: 1 }),
    /** Signed requests older than this, or further ahead than the skew, are refused. */
    FEDERATION_MAX_REQUEST_AGE: envDuration({ default: 300_000, min: 1000 }),
    FEDERATION_MAX_CLOCK_SKEW: envDuration({ default: 60_000, min: 0 }),
    /** Outbound delivery: deadline per attempt and the backoff between attempts. */
    FEDERATION_DELIVERY_TIMEOUT: envDuration({ default: 10_000, min: 100 }),
    FEDERATION_RETRY_INITIAL: envDuration({ default: 500, min: 1 }),
    FEDERATION_RETRY_MAX: envDuration({ default: 30_000, min: 1 }),
    /** An outbound message held by a gateway process that died is redelivered after this long (default 1 min). */
    FEDERATION_LANE_LEASE: envDuration({ default: 60_000, min: 1000 }),
    /** Replicas elect one outbound deliverer; a standby tries to take over this often (default 5 s). */
    FEDERATION_STANDBY_RETRY: envDuration({ default: 5000, min: 10 }),
    /** Stream names (shared with the QS and DS) and the subject prefix (tests only). */
    FEDERATION_OUTBOUND_STREAM: envString({ default: BUS.streams.federation, ...NAME }),
    FEDERATION_FANOUT_STREAM: envString({ default: BUS.streams.fanOut, ...NAME }),
    FEDERATION_QUEUE_DELETED_STREAM: envString({ default: BUS.streams.queueDeleted, ...NAME }),
    FEDERATION_SUBJECT_PREFIX: envString({ default: BUS.subjectPrefix, ...PREFIX }),
    /** Durable consumer names start with this (one consumer per peer, shared by replicas). */
    FEDERATION_CONSUMER_PREFIX: envString({ default: BUS.durables.lanePrefix, ...NAME }),
    /** Inbound envelope ids are remembered this long for dedupe (default 30 days). */
    FEDERATION_DEDUPE_RETENTION: envDuration({ default: 30 * DAY, min: 60_000 }),
  })
  // The admin listener (phoenix.admin.v1.FederationAdminService) and the operator keys it accepts.
  .extend(adminListenerConfig.shape)
  .extend(databaseConfig.shape)
  .extend(busConfig.shape);

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
