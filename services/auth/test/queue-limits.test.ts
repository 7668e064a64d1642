import { status } from "@grpc/grpc-js";
import { randomBytes } from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import {
  expectStatus,
  type Harness,
  queryNumber,
  registerUser,
  startAuth,
  type TestClient,
} from "./support/harness.js";
import { clientContext, dequeue, QueueReader } from "./support/queue-helpers.js";

const DAY = 24 * 3_600_000;

function messagesOf(h: Harness, client: TestClient) {
  return queryNumber(
    h.db.db,
    sql`SELECT count(*) FROM queue_messages m JOIN connection_queues q USING (queue_id)
        WHERE q.user_uuid = ${client.clientId.userId.uuid}`,
  );
}

describe("connection queue depth cap and offer expiry (docs/auth-service.md)", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("refuses an offer to a full queue with RESOURCE_EXHAUSTED 'queue full' and stores nothing", async () => {
    h = await startAuth({ AS_QUEUE_MAX_MESSAGES: "5" });
    const bob = await registerUser(h);
    const offer = () =>
      h!.as.enqueueConnectionOffer({ clientId: bob.wireId, connectionOffer: randomBytes(48) });
    // Concurrent senders cannot overshoot the cap: the Init message plus four offers fit.
    const results = await Promise.allSettled(Array.from({ length: 8 }, offer));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(4);
    expect(await messagesOf(h, bob)).toBe(5);
    const refused = await expectStatus(offer(), status.RESOURCE_EXHAUSTED);
    expect(refused.statusMessage).toBe("connection queue full: holds 5 messages (AS_QUEUE_MAX_MESSAGES=5)");
    const detail = refused.details.find((d) => d.typeUrl.endsWith("phoenix.common.v1.ErrorDetail"));
    const decoded = detail && common.ErrorDetail.decode(detail.value);
    expect(decoded?.reason).toBe(common.ErrorReason.ERROR_REASON_QUOTA);
    expect(decoded?.detail?.$case === "limitExceeded" && decoded.detail.value.limit).toBe(5n);
    expect(await messagesOf(h, bob)).toBe(5);
    // The owner drains the queue (acknowledging by dequeuing past it): offers are accepted again.
    const all = await dequeue(h, bob, 0n);
    await dequeue(h, bob, all.messages.at(-1)!.sequenceNumber + 1n);
    await offer();
  });

  it("deletes offers past AS_QUEUE_MESSAGE_TTL in the expiry job, keeps the queue ratchet readable", async () => {
    h = await startAuth({
      AS_QUEUE_MESSAGE_TTL: "2d",
      AS_QUEUE_KEY_UPDATE_INTERVAL: "2",
      AS_QUEUE_MAX_MESSAGES: "6",
    });
    const bob = await registerUser(h);
    const offer = (text: string) =>
      h!.as.enqueueConnectionOffer({ clientId: bob.wireId, connectionOffer: new TextEncoder().encode(text) });
    // Init (0), offer (1), offer (2), key update (3), offer (4): the queue is at its cap of 6 after one more.
    await offer("old 1");
    await offer("old 2");
    await offer("old 3");
    await offer("old 4");
    await expectStatus(offer("refused"), status.RESOURCE_EXHAUSTED);

    // A day later nothing has expired yet.
    h.advance(DAY);
    expect((await h.service.expiry.runOnce())?.queuedOffers).toBe(0);
    // Past the TTL (rounded up to a whole day) the offers are gone; Init and the key update stay.
    h.advance(2 * DAY);
    expect((await h.service.expiry.runOnce())?.queuedOffers).toBe(4);
    expect(await messagesOf(h, bob)).toBe(2);
    const expiries = await queryNumber(
      h.db.db,
      sql`SELECT count(*) FROM queue_messages m JOIN connection_queues q USING (queue_id)
          WHERE q.user_uuid = ${bob.clientId.userId.uuid} AND m.expires_at IS NOT NULL`,
    );
    expect(expiries).toBe(0);

    // The queue has room again, and its owner still reads what comes next across the gap.
    await offer("new");
    const reader = new QueueReader(bob.queueKey, clientContext(bob));
    for (const m of (await dequeue(h, bob, 0n)).messages) reader.read(m);
    expect(reader.offers.map((o) => new TextDecoder().decode(o))).toEqual(["new"]);
  });
});
