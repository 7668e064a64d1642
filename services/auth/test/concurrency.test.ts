import { randomBytes, toHex } from "@phoenix/crypto";
import { transaction } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { takePackage } from "../src/store/connection-packages.js";
import { type Harness, queryNumber, registerUser, startAuth } from "./support/harness.js";
import { clientContext, dequeue, packageOf, publish, QueueReader } from "./support/queue-helpers.js";

describe("concurrent callers", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth({ AS_ENQUEUE_RATE_PER_MINUTE: "100000", AS_QUEUE_KEY_UPDATE_INTERVAL: "4" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("hands the last ordinary package to exactly one of two overlapping fetches; the other gets the last resort", async () => {
    const alice = await registerUser(h);
    const client = { userUuid: alice.clientId.userId.uuid, clientUuid: alice.clientId.clientUuid };
    const ordinary = packageOf(alice, h.now());
    const lastResort = packageOf(alice, h.now());
    await publish(h, alice, [
      { connectionPackage: ordinary, lastResort: false },
      { connectionPackage: lastResort, lastResort: true },
    ]);

    // Fetch A takes the ordinary package and holds its transaction open while fetch B runs: B must
    // neither wait for A nor get the same package.
    let releaseA: () => void = () => {};
    const aMayCommit = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    let aTook: () => void = () => {};
    const aHasTaken = new Promise<void>((resolve) => {
      aTook = resolve;
    });
    const fetchA = transaction(h.db.db, async (tx) => {
      const taken = await takePackage(tx, { client }, h.now().getTime());
      aTook();
      await aMayCommit;
      return taken;
    });
    await aHasTaken;
    const fetchB = await transaction(h.db.db, (tx) => takePackage(tx, { client }, h.now().getTime()));
    releaseA();
    expect(toHex((await fetchA)!)).toBe(toHex(ordinary));
    expect(toHex(fetchB!)).toBe(toHex(lastResort));

    // Afterwards only the last resort is left, and it keeps being handed out.
    const { packages } = await h.as.getConnectionPackages({ userId: alice.wireId.user });
    expect(toHex(packages[0]!.connectionPackage)).toBe(toHex(lastResort));
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM connection_packages WHERE user_uuid = ${client.userUuid}`,
      ),
    ).toBe(1);
  });

  it("hands out each ordinary package once to a burst of concurrent GetConnectionPackages", async () => {
    const bob = await registerUser(h);
    const ordinary = [packageOf(bob, h.now()), packageOf(bob, h.now()), packageOf(bob, h.now())];
    const lastResort = packageOf(bob, h.now());
    await publish(h, bob, [
      ...ordinary.map((connectionPackage) => ({ connectionPackage, lastResort: false })),
      { connectionPackage: lastResort, lastResort: true },
    ]);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => h.as.getConnectionPackages({ userId: bob.wireId.user })),
    );
    const handedOut = answers.map((a) => {
      expect(a.packages).toHaveLength(1);
      return toHex(a.packages[0]!.connectionPackage);
    });
    const ordinaryHex = ordinary.map(toHex);
    expect(handedOut.filter((p) => ordinaryHex.includes(p)).sort()).toEqual([...ordinaryHex].sort());
    expect(handedOut.filter((p) => p === toHex(lastResort))).toHaveLength(12 - ordinary.length);
    expect(
      await queryNumber(
        h.db.db,
        sql`SELECT count(*) FROM connection_packages WHERE user_uuid = ${bob.clientId.userId.uuid} AND last_resort`,
      ),
    ).toBe(1);
  });

  it("keeps sequence numbers gapless and unique under concurrent enqueues into one queue", async () => {
    const carol = await registerUser(h);
    const offers = Array.from({ length: 30 }, () => randomBytes(40));
    await Promise.all(
      offers.map((connectionOffer) =>
        h.as.enqueueConnectionOffer({ clientId: carol.wireId, connectionOffer }),
      ),
    );
    const { messages, remaining } = await dequeue(h, carol, 0n);
    expect(remaining).toBe(0n);
    // Message 0 starts the ratchet, then offers and key updates (every 4 messages) in one sequence.
    expect(messages.map((m) => m.sequenceNumber)).toEqual(messages.map((_, i) => BigInt(i)));
    expect(messages.length).toBeGreaterThan(offers.length + 1);
    const reader = new QueueReader(carol.queueKey, clientContext(carol));
    for (const message of messages) reader.read(message);
    expect(reader.offers.map(toHex).sort()).toEqual(offers.map(toHex).sort());
  });
});
