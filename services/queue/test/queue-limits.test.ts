import { toHex } from "@phoenix/crypto";
import { eventually } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishFanOut } from "./support/fan-out.js";
import { Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

const HOUR = 3600_000;
const CAP = 5;
let clockOffsetMs = 0;
let h: Harness;

beforeAll(async () => {
  h = await Harness.start({
    config: {
      QS_MAX_QUEUE_DEPTH: CAP,
      QS_RATCHET_UPDATE_MESSAGES: 1000,
      QS_RATCHET_UPDATE_INTERVAL: 1000 * HOUR,
      QS_MESSAGE_EXPIRY: HOUR,
    },
    now: () => Date.now() + clockOffsetMs,
  });
});
afterAll(async () => {
  await h?.stop();
});

/** A new user whose requests follow the QS's (moved) clock. */
async function user(): Promise<TestClient> {
  const client = await h.newUser();
  client.clock = () => new Date(Date.now() + clockOffsetMs);
  return client;
}

/** Publishes `count` fan-outs to `client`, then one to a fresh marker, and waits for the marker. */
async function publishAndSettle(client: TestClient, count: number, fresh?: TestClient) {
  const marker = fresh ?? (await user());
  const sent = [];
  for (let i = 0; i < count; i++) sent.push(await publishFanOut(h, { recipients: [client.qsReference()] }));
  // Batches are handled one after the other: once the last fan-out is in, the others are done.
  const last = await publishFanOut(h, { recipients: [marker.qsReference()] });
  await eventually(async () => {
    const res = await marker.dequeue(0n);
    return res.messages.length >= 2 ? true : undefined;
  });
  await marker.dequeue(2n);
  return { sent, last };
}

/** What the database holds for a queue: its rows and its depth count. */
async function queueState(client: TestClient) {
  const result = (await h.db.db.execute(sql`
    select (select count(*)::int from qs_messages where client_id = ${client.clientId}) as n,
           queue_depth as depth, next_seq::text
    from qs_clients where client_id = ${client.clientId}`)) as unknown as {
    rows: { n: number; depth: number; next_seq: string }[];
  };
  const row = result.rows[0];
  if (row === undefined) throw new Error("no client row");
  return { rows: row.n, depth: row.depth, nextSeq: BigInt(row.next_seq) };
}

describe("queue depth cap", () => {
  it("drops fan-outs to a full queue, leaving a one-wide sequence gap the owner reads past", async () => {
    const alice = await user();
    // The queue holds its Init message; CAP - 1 messages fill it, the other 6 are dropped.
    const { sent } = await publishAndSettle(alice, CAP - 1 + 6);
    const first = await alice.dequeue(0n);
    expect(first.messages.map((m) => m.sequenceNumber)).toEqual([0n, 1n, 2n, 3n, 4n]);
    expect(first.remaining).toBe(0n);
    expect(alice.decrypt(first.messages).map(toHex)).toEqual(
      sent.slice(0, CAP - 1).map((f) => toHex(f.payload)),
    );
    // Six drops took one sequence number between them.
    expect(await queueState(alice)).toEqual({ rows: CAP, depth: CAP, nextSeq: 6n });

    // Once the owner acknowledged, the queue takes messages again, after the gap at 5.
    await alice.dequeue(5n);
    expect(await queueState(alice)).toEqual({ rows: 0, depth: 0, nextSeq: 6n });
    const { sent: later } = await publishAndSettle(alice, 1);
    const next = await alice.dequeue(5n);
    expect(next.messages.map((m) => m.sequenceNumber)).toEqual([6n]);
    expect(alice.decrypt(next.messages).map(toHex)).toEqual(later.map((f) => toHex(f.payload)));
  });
});

describe("message expiry", () => {
  it("deletes messages older than the expiry in the sweep, keeps the Init message, and the owner reads on", async () => {
    const bob = await user();
    await publishAndSettle(bob, 2);
    expect(await queueState(bob)).toMatchObject({ rows: 3, depth: 3 });

    expect((await h.service.sweep()).messages).toBe(0);
    // Registration is signed with the real time: register the next marker before the clock moves.
    const lateMarker = await user();
    clockOffsetMs += 2 * HOUR;
    // Bob's two messages expire (and any other test's unacked ones); Init messages stay.
    expect((await h.service.sweep()).messages).toBeGreaterThanOrEqual(2);
    expect(await queueState(bob)).toMatchObject({ rows: 1, depth: 1 });
    const left = await bob.dequeue(0n);
    expect(left.messages.map((m) => m.sequenceNumber)).toEqual([0n]);
    bob.decrypt(left.messages);

    const { sent } = await publishAndSettle(bob, 1, lateMarker);
    const res = await bob.dequeue(1n);
    expect(res.messages.map((m) => m.sequenceNumber)).toEqual([3n]);
    expect(bob.decrypt(res.messages).map(toHex)).toEqual(sent.map((f) => toHex(f.payload)));
  });
});
