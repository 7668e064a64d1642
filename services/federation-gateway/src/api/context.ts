import type { RpcInfo } from "@phoenix/proto";
import type { Bus } from "@phoenix/runtime/bus";
import type { Database } from "@phoenix/runtime/db";
import type { FederationPolicy } from "../domain/policy.js";
import type { PeerClients } from "../outbound/peer-clients.js";
import type { PeerKeyDirectory } from "../outbound/peer-keys.js";
import type { UpstreamServices } from "../outbound/upstream.js";
import type { KeyRing } from "../store/key-ring.js";
import type { PeerActivity } from "../store/peer-stats.js";
import type { InboundAuthenticator } from "./inbound-auth.js";

/** What the RPC handlers share. */
export interface GatewayContext {
  domain: string;
  db: Database;
  bus: Bus;
  keys: KeyRing;
  auth: InboundAuthenticator;
  policy: FederationPolicy;
  peers: PeerClients;
  /** Peer domains' verifying keys (cached). */
  peerKeys: PeerKeyDirectory;
  upstream: UpstreamServices;
  /** Forwardable RPCs by gRPC path (catalog entries with `federated: true`). */
  federated: ReadonlyMap<string, RpcInfo>;
  /** Every RPC path of the contracts (to tell "unknown" from "not federated"). */
  known: ReadonlySet<string>;
  subjects: { fanOut: string; queueDeleted: string };
  /** Deadline of a proxied call when the caller sent none. */
  proxyTimeoutMs: number;
  /** This replica's tally of peer events (ListPeers). */
  activity: PeerActivity;
  /** Milliseconds since the epoch. */
  now(): number;
}
