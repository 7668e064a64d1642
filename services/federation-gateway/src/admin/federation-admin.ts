// phoenix.admin.v1.FederationAdminService, served on the gateway's admin listener only: its
// peers (ListPeers) and the federation policy at runtime (Get/SetFederationPolicy), every call
// audited by the runtime's operator call (log line + admin_audit row in the gateway database).
import type { VerifyingKey } from "@phoenix/crypto";
import { federationAdmin } from "@phoenix/proto";
import type { Bus } from "@phoenix/runtime/bus";
import { FQDN_RULE, isHomeserverDomain } from "@phoenix/runtime/config";
import type { Database } from "@phoenix/runtime/db";
import { InvalidArgumentError } from "@phoenix/runtime/errors";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import { asOperator, type OperatorCallContext } from "@phoenix/runtime/module";
import type { SignedRequestPolicy } from "@phoenix/runtime/signed-request";
import type { FederationPolicy, PolicyConfig } from "../domain/policy.js";
import { listPeerStats, type PeerActivity } from "../store/peer-stats.js";
import { loadStoredPolicy, storePolicy } from "../store/policy-store.js";

const S = federationAdmin.FederationAdminServiceService;
const Mode = federationAdmin.FederationPolicyMode;

/** What the admin RPCs of the gateway share. */
export interface FederationAdminContext {
  domain: string;
  db: Database;
  log: Logger;
  now(): number;
  operatorKeys: ReadonlyMap<string, VerifyingKey>;
  /** The gateway's signed-request policy for operator requests at `now`. */
  requestPolicy(now: number): SignedRequestPolicy<Database>;
  /** The policy in force on this replica (replaced at once by SetFederationPolicy). */
  policy: FederationPolicy;
  /** The configured policy (FEDERATION_POLICY, …_ALLOWED_DOMAINS, …_DENIED_DOMAINS). */
  configured: PolicyConfig;
  activity: PeerActivity;
  bus: Pick<Bus, "consumerLag">;
  /** The stream and durable of a peer's outbound lane. */
  laneOf(peer: string): { stream: string; durable: string };
}

function callContext(ctx: FederationAdminContext): OperatorCallContext {
  return {
    db: ctx.db,
    log: ctx.log,
    now: () => ctx.now(),
    operatorKeys: ctx.operatorKeys,
    requestPolicy: (now) => ctx.requestPolicy(now),
  };
}

function toWire(policy: PolicyConfig): federationAdmin.FederationPolicy {
  return {
    mode: policy.mode === "open" ? Mode.FEDERATION_POLICY_MODE_OPEN : Mode.FEDERATION_POLICY_MODE_ALLOWLIST,
    allowedDomains: [...policy.allowed],
    deniedDomains: [...policy.denied],
  };
}

/** The policy a SetFederationPolicy asks for, checked: INVALID_ARGUMENT naming the problem. */
export function policyFromWire(
  wire: federationAdmin.FederationPolicy | undefined,
  ownDomain: string,
): PolicyConfig {
  if (wire === undefined) throw new InvalidArgumentError("tbs.policy: missing");
  const mode =
    wire.mode === Mode.FEDERATION_POLICY_MODE_OPEN
      ? "open"
      : wire.mode === Mode.FEDERATION_POLICY_MODE_ALLOWLIST
        ? "allowlist"
        : undefined;
  if (mode === undefined) throw new InvalidArgumentError("tbs.policy.mode: must be allowlist or open");
  const list = (field: string, domains: readonly string[]): string[] => {
    if (domains.length > 10_000)
      throw new InvalidArgumentError(`tbs.policy.${field}: more than 10000 domains`);
    for (const domain of domains) {
      if (!isHomeserverDomain(domain)) {
        throw new InvalidArgumentError(
          `tbs.policy.${field}: ${JSON.stringify(domain.slice(0, 253))} is not ${FQDN_RULE}`,
        );
      }
      if (domain === ownDomain)
        throw new InvalidArgumentError(`tbs.policy.${field}: ${domain} is this homeserver's own domain`);
    }
    return [...new Set(domains)].sort();
  };
  return {
    mode,
    allowed: list("allowed_domains", wire.allowedDomains),
    denied: list("denied_domains", wire.deniedDomains),
  };
}

/** What an audit row says of a policy (domains are public names, not user data). */
function describePolicy(policy: federationAdmin.FederationPolicy | undefined): string {
  if (policy === undefined) return "policy (missing)";
  const mode = federationAdmin.federationPolicyModeToJSON(policy.mode);
  return `policy ${mode} allow=${policy.allowedDomains.join(",")} deny=${policy.deniedDomains.join(",")}`;
}

/** ListPeers: the stored figures plus this replica's unflushed tally, the lanes' backlog. */
async function listPeers(
  ctx: FederationAdminContext,
  request: federationAdmin.ListPeersRequest,
): Promise<federationAdmin.ListPeersResponse> {
  return asOperator(
    callContext(ctx),
    request,
    federationAdmin.ListPeersTbs,
    S.listPeers,
    () => "peers",
    // Outside the call's transaction: the bus's lag reads may need the same (embedded) store.
    async (_opened, db) => {
      // This replica's tally first.
      await ctx.activity.flush(db);
      const rows = await listPeerStats(db);
      const lags = (await ctx.bus.consumerLag?.().catch(() => undefined)) ?? [];
      const backlog = new Map(
        lags.map((lag) => [`${lag.stream}\u0000${lag.durable}`, lag.pending + lag.ackPending]),
      );
      return {
        peers: rows.map((row) => {
          const lane = ctx.laneOf(row.domain);
          return {
            domain: row.domain,
            lastInboundAt: row.lastInboundAt ?? undefined,
            lastOutboundAt: row.lastOutboundAt ?? undefined,
            outboundBacklog: BigInt(backlog.get(`${lane.stream}\u0000${lane.durable}`) ?? 0),
            inboundPolicyRefusals: row.inboundPolicyRefusals,
            inboundSignatureRefusals: row.inboundSignatureRefusals,
            outboundFailures: row.outboundFailures,
            admitted: ctx.policy.refusal(row.domain) === undefined,
          };
        }),
      };
    },
    { transactional: false },
  );
}

/** GetFederationPolicy: the stored policy, else the configured one. */
async function getFederationPolicy(
  ctx: FederationAdminContext,
  request: federationAdmin.GetFederationPolicyRequest,
): Promise<federationAdmin.GetFederationPolicyResponse> {
  return asOperator(
    callContext(ctx),
    request,
    federationAdmin.GetFederationPolicyTbs,
    S.getFederationPolicy,
    () => "policy",
    async (_opened, db) => {
      const stored = await loadStoredPolicy(db);
      return { policy: toWire(stored ?? ctx.configured), fromConfig: stored === undefined };
    },
  );
}

/**
 * SetFederationPolicy: stored in admin_settings (every replica reloads it within
 * FEDERATION_POLICY_REFRESH) and in force on this replica as soon as it committed.
 */
async function setFederationPolicy(
  ctx: FederationAdminContext,
  request: federationAdmin.SetFederationPolicyRequest,
): Promise<federationAdmin.SetFederationPolicyResponse> {
  const policy = await asOperator(
    callContext(ctx),
    request,
    federationAdmin.SetFederationPolicyTbs,
    S.setFederationPolicy,
    (tbs) => describePolicy(tbs.policy),
    async ({ tbs }, db) => {
      const checked = policyFromWire(tbs.policy, ctx.domain);
      await storePolicy(db, checked);
      return checked;
    },
  );
  ctx.policy.replace(policy);
  ctx.log.info(
    { mode: policy.mode, allowed: policy.allowed.length, denied: policy.denied.length },
    "federation policy set",
  );
  return { policy: toWire(policy) };
}

/** phoenix.admin.v1.FederationAdminService on `ctx`. */
export function federationAdminRoutes(ctx: FederationAdminContext): ServiceRegistration {
  return defineService(federationAdmin.FederationAdminServiceService, {
    listPeers: unary((request) => listPeers(ctx, request)),
    getFederationPolicy: unary((request) => getFederationPolicy(ctx, request)),
    setFederationPolicy: unary((request) => setFederationPolicy(ctx, request)),
  });
}
