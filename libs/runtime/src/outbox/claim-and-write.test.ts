import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { OUTBOX_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seenRequests } from "../replay/schema.js";
import { countQueries } from "../testing/query-counter.js";
import { RecordingBus } from "../testing/recording-bus.js";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { OutboxRelay } from "./relay.js";
import { outbox } from "./schema.js";
import { claimAndWriteOutbox } from "./write-outbox.js";

const sealer = new PayloadSealer(OUTBOX_PAYLOAD, "TEST_OUTBOX_SECRET", randomBytes(32));
const migrationsFolder = fileURLToPath(new URL("../db/test-fixture/migrations", import.meta.url));
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const decode = (data: Uint8Array): string => new TextDecoder().decode(data);
const claim = () => ({ marker: randomBytes(32), expiresAt: new Date(Date.now() + 60_000) });

describe.each([
  { driver: "pg", open: () => createTestDatabase({ migrationsFolder }) },
  { driver: "pglite", open: () => createTestPglite({ migrationsFolder }) },
])("claimAndWriteOutbox on $driver", ({ open }) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await open();
  });
  afterAll(async () => {
    await testDb?.close();
  });

  it("claims the id and writes the messages in the caller's order; the relay publishes them", async () => {
    await testDb.db.delete(outbox);
    const texts = Array.from({ length: 12 }, (_, i) => `m${i}`);
    const claimed = await claimAndWriteOutbox(
      testDb.db,
      claim(),
      texts.map((t, i) => ({ subject: `fanout.g${i % 2}`, payload: encode(t), headers: { n: String(i) } })),
      sealer,
    );
    expect(claimed).toBe(true);
    const bus = new RecordingBus();
    const relay = new OutboxRelay({ database: testDb, bus, sealer, batchSize: 100 });
    expect(await relay.runOnce()).toEqual({ acquired: true, published: 12 });
    expect(bus.stored.map((m) => decode(m.data))).toEqual(texts);
    expect(bus.stored.map((m) => m.headers?.n)).toEqual(texts.map((_, i) => String(i)));
  });

  it("writes nothing and answers false for an id claimed before (a replay)", async () => {
    await testDb.db.delete(outbox);
    const once = claim();
    expect(
      await claimAndWriteOutbox(testDb.db, once, [{ subject: "fanout.g1", payload: encode("a") }], sealer),
    ).toBe(true);
    expect(
      await claimAndWriteOutbox(testDb.db, once, [{ subject: "fanout.g1", payload: encode("b") }], sealer),
    ).toBe(false);
    expect(await claimAndWriteOutbox(testDb.db, once, [], sealer)).toBe(false);
    expect(await testDb.db.$count(outbox)).toBe(1);
    const fresh = claim();
    expect(await claimAndWriteOutbox(testDb.db, fresh, [], sealer)).toBe(true);
    const markers = (await testDb.db.select().from(seenRequests)).map((r) =>
      Buffer.from(r.marker).toString("hex"),
    );
    expect(markers).toContain(Buffer.from(fresh.marker).toString("hex"));
  });

  it("refuses a message that could never be published before writing anything, claim included", async () => {
    const before = await testDb.db.$count(seenRequests);
    await expect(
      claimAndWriteOutbox(testDb.db, claim(), [{ subject: "fanout.*", payload: encode("x") }], sealer),
    ).rejects.toThrow(/outbox message refused/);
    expect(await testDb.db.$count(seenRequests)).toBe(before);
  });
});

describe("claimAndWriteOutbox round trips", () => {
  it("is one write statement, with no transaction around it", async () => {
    const testDb = await createTestDatabase({ migrationsFolder });
    try {
      const counter = countQueries(testDb);
      const tally = await counter.measure(() =>
        claimAndWriteOutbox(
          counter.database.db,
          claim(),
          [
            { subject: "fanout.g1", payload: encode("a") },
            { subject: "fanout.g2", payload: encode("b") },
          ],
          sealer,
        ),
      );
      expect({ reads: tally.reads, writes: tally.writes, replay: tally.replay }).toEqual({
        reads: 0,
        writes: 1,
        replay: 1,
      });
      expect(counter.queries.map((q) => q.kind)).toEqual(["write"]);
    } finally {
      await testDb.close();
    }
  });
});
