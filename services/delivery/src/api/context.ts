import type { PayloadSealer } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import type { AddressMatcher, NamedRateLimit, SharedRateLimits } from "@phoenix/runtime/rate-limit";
import type { ReplayStore } from "@phoenix/runtime/replay";
import type { RequestWindow } from "@phoenix/runtime/signed-request";
import type { DsContext } from "../domain/ds-context.js";
import type { DsGroup } from "../domain/group.js";
import type { QueueReportPolicy } from "../domain/queue-reports.js";
import type { GroupStateCache } from "../domain/state-cache.js";

/** The per-caller limit of RequestGroupId (DS_CALLER_RATE_GROUP_ID_PER_MINUTE). */
export interface GroupIdLimit {
  readonly limit: NamedRateLimit;
  /** Buckets in the DS database: the limit holds across replicas. */
  readonly store: SharedRateLimits;
  /** Peers whose `x-forwarded-for` names the caller (DS_TRUSTED_PROXIES). */
  readonly trustedProxies: AddressMatcher;
}

/**
 * Everything the RPC handlers share; it is also the domain logic's {@link DsContext} (clock,
 * ciphersuite, domain, client inactivity).
 */
export interface DeliveryContext extends DsContext {
  db: Database;
  /** Request ids accepted by any replica (phoenix_runtime.seen_requests), claimed in the request's transaction. */
  seenRequests: ReplayStore;
  /** Accepted age / future skew of request timestamps. */
  replayWindow: RequestWindow;
  /** Padding buckets of the encrypted group state. */
  paddingBuckets: readonly number[];
  /** How long a RequestGroupId reservation lives. */
  reservationTtlMs: number;
  /** The per-caller limit of RequestGroupId. */
  groupIdLimit: GroupIdLimit;
  /** Bus subject of fan-outs (default phoenix.fanout; tests use their own). */
  fanOutSubject: string;
  /** Called after a transaction that wrote fan-outs committed. */
  onFanOut: () => void;
  /** Seals fan-outs in the outbox (key derived from DS_REPLAY_MARKER_KEY); the relay opens them. */
  outboxSealer: PayloadSealer;
  /** How many queue-deleted reports a group keeps, and for how long (domain/queue-reports.ts). */
  queueReports: QueueReportPolicy;
  /** Decoded group states of recent requests (bounded; see docs/security.md). */
  stateCache: GroupStateCache<DsGroup>;
}
