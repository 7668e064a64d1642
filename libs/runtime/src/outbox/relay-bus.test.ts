// The outbox end to end on the real buses: outbox → relay → bus → durable consumer.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { OUTBOX_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEmbeddedBus } from "../bus/embedded-bus.js";
import { connectNatsBus } from "../bus/nats-bus.js";
import type { Bus, BusMessage } from "../bus/types.js";
import { transaction } from "../db/transaction.js";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { OutboxRelay } from "./relay.js";
import { writeOutbox } from "./write-outbox.js";

const migrationsFolder = fileURLToPath(new URL("../db/test-fixture/migrations", import.meta.url));

interface BusCase {
  name: string;
  open(): Promise<TestDatabase>;
  bus(testDb: TestDatabase): Promise<{ bus: Bus; cleanup(stream: string): Promise<void> }>;
}

const cases: BusCase[] = [
  {
    name: "embedded bus sharing the service's PGlite database",
    open: () => createTestPglite({ migrationsFolder }),
    bus: async (testDb) => ({ bus: await createEmbeddedBus({ db: testDb.db }), cleanup: async () => {} }),
  },
  {
    name: "embedded bus on Postgres",
    open: () => createTestDatabase({ migrationsFolder }),
    bus: async (testDb) => ({ bus: await createEmbeddedBus({ db: testDb.db }), cleanup: async () => {} }),
  },
  {
    name: "NATS JetStream",
    open: () => createTestDatabase({ migrationsFolder }),
    async bus() {
      const servers = process.env.NATS_URL;
      if (!servers)
        throw new Error("NATS_URL is not set: run tests through vitest (its global setup sets it)");
      return {
        bus: await connectNatsBus({ servers, name: "outbox-relay-test" }),
        async cleanup(stream) {
          const nc = await connect({ servers });
          try {
            await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
          } finally {
            await nc.close();
          }
        },
      };
    },
  },
];

describe.each(cases)("outbox relay → $name", (busCase) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await busCase.open();
  });
  afterAll(async () => {
    await testDb?.close();
  });

  it("delivers every committed message once, in order, even when an ack is lost and the relay re-publishes", async () => {
    const suffix = randomBytes(4).toString("hex");
    const stream = `OUTBOX_TEST_${suffix}`;
    const subject = `outboxtest.${suffix}.fanout`;
    const { bus, cleanup } = await busCase.bus(testDb);
    const received: BusMessage[] = [];
    let subscription: { stop(): Promise<void> } | undefined;
    const relayErrors: unknown[] = [];
    let duplicates = 0;
    let loseAck = true;
    const sealer = new PayloadSealer(OUTBOX_PAYLOAD, "test key", randomBytes(32));
    const relay = new OutboxRelay({
      database: testDb,
      sealer,
      // The first publish reaches the stream but its ack is lost, as in a crash before the delete.
      bus: {
        async publish(s, data, options) {
          const ack = await bus.publish(s, data, options);
          if (ack.duplicate) duplicates++;
          if (loseAck) {
            loseAck = false;
            throw new Error("connection lost before the ack arrived");
          }
          return ack;
        },
      },
      pollIntervalMs: 600_000,
      retryDelayMs: 10,
      onError: (error) => relayErrors.push(error),
    });
    try {
      await bus.ensureStream({ name: stream, subjects: [`outboxtest.${suffix}.>`] });
      const count = 12;
      let allReceived!: () => void;
      const done = new Promise<void>((resolve) => {
        allReceived = resolve;
      });
      subscription = await bus.consume({ stream, durable: `relay_test_${suffix}` }, async (msg) => {
        received.push(msg);
        if (received.length === count) allReceived();
      });
      relay.start();
      const ids: string[] = [];
      for (let i = 0; i < count; i += 3) {
        ids.push(
          ...(await transaction(testDb.db, (tx) =>
            writeOutbox(
              tx,
              [0, 1, 2].map((j) => ({
                subject,
                payload: new TextEncoder().encode(String(i + j)),
                headers: { "x-n": String(i + j) },
              })),
              sealer,
            ),
          )),
        );
        relay.poke();
      }
      await done;
      await relay.stop();

      expect(relayErrors).toHaveLength(1);
      expect(duplicates).toBe(1);
      expect(received.map((m) => m.id)).toEqual(ids);
      expect(received.map((m) => new TextDecoder().decode(m.data))).toEqual(
        Array.from({ length: count }, (_, i) => String(i)),
      );
      expect(received.map((m) => m.headers["x-n"])).toEqual(
        Array.from({ length: count }, (_, i) => String(i)),
      );
    } finally {
      await relay.stop();
      await subscription?.stop();
      await bus.close();
      await cleanup(stream);
    }
  });
});
