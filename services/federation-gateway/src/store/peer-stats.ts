// What the gateway saw of each peer domain (fed_peer_stats): the in-memory tally of one replica
// and its flush, at most one write per peer per flush (a minute in service), and the reads of
// the admin API's ListPeers.
import type { Database } from "@phoenix/runtime/db";
import { asc, lt, sql } from "drizzle-orm";
import { peerStats } from "./schema.js";

/** Contacts are recorded to the minute: finer times would date each request. */
const MINUTE = 60_000;

/** One peer's events since the last flush. */
interface Tally {
  lastInboundAt?: number;
  lastOutboundAt?: number;
  lastSeenAt: number;
  inboundPolicyRefusals: number;
  inboundSignatureRefusals: number;
  outboundFailures: number;
}

/** One peer as ListPeers reads it. */
export type PeerStatsRow = typeof peerStats.$inferSelect;

/**
 * A replica's tally of peer events, written by `flush` (an interval worker, a minute by default,
 * and before ListPeers answers). Only in memory between flushes: a crash loses at most one
 * interval's counts. Holds at most `maxPeers` domains between flushes (a flood of refused
 * senders with made-up domains is counted up to that many domains, then dropped).
 */
export class PeerActivity {
  private tallies = new Map<string, Tally>();
  /** Events dropped because the tally was full (logged at flush). */
  dropped = 0;

  constructor(
    private readonly now: () => number,
    private readonly maxPeers = 10_000,
  ) {}

  private tally(peer: string): Tally | undefined {
    let tally = this.tallies.get(peer);
    if (tally === undefined) {
      if (this.tallies.size >= this.maxPeers) {
        this.dropped++;
        return undefined;
      }
      tally = { lastSeenAt: 0, inboundPolicyRefusals: 0, inboundSignatureRefusals: 0, outboundFailures: 0 };
      this.tallies.set(peer, tally);
    }
    tally.lastSeenAt = minute(this.now());
    return tally;
  }

  /** A request from `peer` passed authentication and policy. */
  inbound(peer: string): void {
    const tally = this.tally(peer);
    if (tally) tally.lastInboundAt = tally.lastSeenAt;
  }

  /** `peer` took a request or envelope of ours. */
  outbound(peer: string): void {
    const tally = this.tally(peer);
    if (tally) tally.lastOutboundAt = tally.lastSeenAt;
  }

  /** A request claiming to come from `peer` was refused by the policy. */
  inboundPolicyRefused(peer: string): void {
    const tally = this.tally(peer);
    if (tally) tally.inboundPolicyRefusals++;
  }

  /** A request claiming to come from `peer` was refused for its signature, keys, time or id. */
  inboundSignatureRefused(peer: string): void {
    const tally = this.tally(peer);
    if (tally) tally.inboundSignatureRefusals++;
  }

  /** Sending to `peer` failed (or our policy refused it). */
  outboundFailed(peer: string): void {
    const tally = this.tally(peer);
    if (tally) tally.outboundFailures++;
  }

  /** Adds the tally to fed_peer_stats (one upsert per peer) and starts a new one. */
  async flush(db: Database): Promise<number> {
    if (this.tallies.size === 0) return 0;
    const tallies = this.tallies;
    this.tallies = new Map();
    const rows = [...tallies].map(([domain, t]) => ({
      domain,
      lastInboundAt: t.lastInboundAt === undefined ? null : new Date(t.lastInboundAt),
      lastOutboundAt: t.lastOutboundAt === undefined ? null : new Date(t.lastOutboundAt),
      lastSeenAt: new Date(t.lastSeenAt),
      inboundPolicyRefusals: BigInt(t.inboundPolicyRefusals),
      inboundSignatureRefusals: BigInt(t.inboundSignatureRefusals),
      outboundFailures: BigInt(t.outboundFailures),
    }));
    try {
      await db
        .insert(peerStats)
        .values(rows)
        .onConflictDoUpdate({
          target: peerStats.domain,
          set: {
            lastInboundAt: sql`greatest(${peerStats.lastInboundAt}, excluded.last_inbound_at)`,
            lastOutboundAt: sql`greatest(${peerStats.lastOutboundAt}, excluded.last_outbound_at)`,
            lastSeenAt: sql`greatest(${peerStats.lastSeenAt}, excluded.last_seen_at)`,
            inboundPolicyRefusals: sql`${peerStats.inboundPolicyRefusals} + excluded.inbound_policy_refusals`,
            inboundSignatureRefusals: sql`${peerStats.inboundSignatureRefusals} + excluded.inbound_signature_refusals`,
            outboundFailures: sql`${peerStats.outboundFailures} + excluded.outbound_failures`,
          },
        });
    } catch (error) {
      // Kept for the next flush (merged with what came since).
      for (const [domain, tally] of tallies) this.merge(domain, tally);
      throw error;
    }
    return rows.length;
  }

  private merge(domain: string, old: Tally): void {
    const now = this.tallies.get(domain);
    if (now === undefined) {
      this.tallies.set(domain, old);
      return;
    }
    now.lastInboundAt = Math.max(now.lastInboundAt ?? 0, old.lastInboundAt ?? 0) || undefined;
    now.lastOutboundAt = Math.max(now.lastOutboundAt ?? 0, old.lastOutboundAt ?? 0) || undefined;
    now.lastSeenAt = Math.max(now.lastSeenAt, old.lastSeenAt);
    now.inboundPolicyRefusals += old.inboundPolicyRefusals;
    now.inboundSignatureRefusals += old.inboundSignatureRefusals;
    now.outboundFailures += old.outboundFailures;
  }
}

/** `ms` floored to its UTC minute. */
function minute(ms: number): number {
  return Math.floor(ms / MINUTE) * MINUTE;
}

/** Every peer's stats, by domain. */
export function listPeerStats(db: Database): Promise<PeerStatsRow[]> {
  return db.select().from(peerStats).orderBy(asc(peerStats.domain));
}

/** Deletes the rows of peers not seen since `before`; returns how many. */
export async function prunePeerStats(db: Database, before: Date): Promise<number> {
  const rows = await db
    .delete(peerStats)
    .where(lt(peerStats.lastSeenAt, before))
    .returning({ domain: peerStats.domain });
  return rows.length;
}
