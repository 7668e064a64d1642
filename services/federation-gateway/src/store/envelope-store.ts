import type { Database } from "@phoenix/runtime/db";
import { eq, lt } from "drizzle-orm";
import { inboundEnvelopes, outboundPeers } from "./schema.js";

/** True when this envelope was already handed to the local bus. */
export async function envelopeSeen(db: Database, envelopeId: Uint8Array): Promise<boolean> {
  const rows = await db
    .select({ id: inboundEnvelopes.envelopeId })
    .from(inboundEnvelopes)
    .where(eq(inboundEnvelopes.envelopeId, envelopeId))
    .limit(1);
  return rows.length > 0;
}

/** Records an envelope as handed to the local bus (idempotent). */
export async function markEnvelopeSeen(db: Database, envelopeId: Uint8Array): Promise<void> {
  await db.insert(inboundEnvelopes).values({ envelopeId }).onConflictDoNothing();
}

/** Forgets envelopes received before `before` (their senders stopped retrying long ago). */
export async function pruneSeenEnvelopes(db: Database, before: Date): Promise<void> {
  await db.delete(inboundEnvelopes).where(lt(inboundEnvelopes.receivedAt, before));
}

/** Every peer that has an outbound lane. */
export async function loadOutboundPeers(db: Database): Promise<string[]> {
  return (await db.select({ domain: outboundPeers.domain }).from(outboundPeers)).map((r) => r.domain);
}

/** Remembers a peer with an outbound lane (idempotent). */
export async function addOutboundPeer(db: Database, domain: string): Promise<void> {
  await db.insert(outboundPeers).values({ domain }).onConflictDoNothing();
}
