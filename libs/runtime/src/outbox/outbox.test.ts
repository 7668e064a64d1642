import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { OUTBOX_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { eq, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type DatabaseHandle, openDatabase } from "../db/open-database.js";
import { groups } from "../db/test-fixture/schema.js";
import { transaction } from "../db/transaction.js";
import { RecordingBus } from "../testing/recording-bus.js";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { OutboxPublishError, OutboxRelay, type OutboxRelayOptions, outboxBacklog } from "./relay.js";
import { outbox } from "./schema.js";
import { type OutboxMessage, OutboxMessageError, writeOutbox as writeSealed } from "./write-outbox.js";

const sealer = new PayloadSealer(OUTBOX_PAYLOAD, "TEST_OUTBOX_SECRET", randomBytes(32));
/** writeOutbox with this file's sealer (the relays below open with the same one). */
const writeOutbox = (tx: Parameters<typeof writeSealed>[0], messages: readonly OutboxMessage[]) =>
  writeSealed(tx, messages, sealer);

const migrationsFolder = fileURLToPath(new URL("../db/test-fixture/migrations", import.meta.url));
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const decode = (data: Uint8Array): string => new TextDecoder().decode(data);

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A replica that can "crash" (its process dies between publish and delete) and be restarted. */
interface CrashableReplica {
  handle: DatabaseHandle;
  crash(): Promise<void>;
  /** The database as seen after the crash: another replica, or the restarted process. */
  restart(): Promise<DatabaseHandle>;
  cleanup(): Promise<void>;
}

interface Driver {
  driver: "pg" | "pglite";
  open(): Promise<TestDatabase>;
  /** Another process's handle on the same database (pg), or the same handle (PGlite: one process). */
  replica(testDb: TestDatabase): Promise<DatabaseHandle>;
  crashable(testDb: TestDatabase): Promise<CrashableReplica>;
}

const drivers: Driver[] = [
  {
    driver: "pg",
    open: () => createTestDatabase({ migrationsFolder }),
    replica: (testDb) => openDatabase({ driver: "pg", url: testDb.url! }),
    async crashable(testDb) {
      const applicationName = `relay-a-${randomBytes(4).toString("hex")}`;
      const handle = await openDatabase({ driver: "pg", url: testDb.url!, applicationName });
      return {
        handle,
        async crash() {
          // What Postgres sees when a replica dies: its connections drop, its session locks go.
          await testDb.db.execute(
            sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${applicationName}`,
          );
        },
        restart: async () => testDb,
        cleanup: () => handle.close(),
      };
    },
  },
  {
    driver: "pglite",
    open: () => createTestPglite({ migrationsFolder }),
    replica: async (testDb) => ({ ...testDb, close: async () => {} }),
    async crashable() {
      // The embedded homeserver is one process: a crash is the whole process, and a restart
      // reopens the same data directory.
      const dataDir = await mkdtemp(join(tmpdir(), "outbox-crash-"));
      const handle = await openDatabase({ driver: "pglite", dataDir, migrationsFolder });
      let restarted: DatabaseHandle | undefined;
      return {
        handle,
        crash: () => handle.close(),
        async restart() {
          restarted = await openDatabase({ driver: "pglite", dataDir, migrationsFolder });
          return restarted;
        },
        async cleanup() {
          await restarted?.close();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
];

describe.each(drivers)("outbox on $driver", (driver) => {
  let testDb: TestDatabase;
  const relays: OutboxRelay[] = [];

  function startRelay(
    database: Pick<DatabaseHandle, "tryWithLock">,
    bus: RecordingBus,
    options: Partial<OutboxRelayOptions> = {},
  ): OutboxRelay {
    // A poll interval far beyond the test timeouts: messages only go out because of poke().
    const relay = new OutboxRelay({ database, bus, sealer, pollIntervalMs: 600_000, ...options });
    relays.push(relay);
    relay.start();
    return relay;
  }

  beforeAll(async () => {
    testDb = await driver.open();
  });
  afterAll(async () => {
    await testDb?.close();
  });
  beforeEach(async () => {
    await testDb.db.delete(outbox);
    await testDb.db.delete(groups);
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
  });

  it("publishes nothing written by a rolled-back transaction", async () => {
    const bus = new RecordingBus();
    await expect(
      transaction(testDb.db, async (tx) => {
        await writeOutbox(tx, [{ subject: "fanout.g1", payload: encode("never") }]);
        throw new Error("commit rejected");
      }),
    ).rejects.toThrow("commit rejected");
    const relay = new OutboxRelay({ database: testDb, bus, sealer });
    expect(await relay.runOnce()).toEqual({ acquired: true, published: 0 });
    expect(bus.attempts).toEqual([]);
    expect((await outboxBacklog(testDb.db)).count).toBe(0);
  });

  it("publishes committed messages once each, in commit order, then deletes them", async () => {
    const bus = new RecordingBus();
    const relay = startRelay(testDb, bus, { batchSize: 4 });
    const written: { id: string; subject: string; text: string; headers: Record<string, string> }[] = [];
    for (let t = 0; t < 10; t++) {
      const messages = Array.from({ length: 1 + (t % 3) }, (_, i) => ({
        subject: `fanout.g${(t + i) % 3}`,
        text: `tx${t}-m${i}`,
        headers: (i === 0 ? { "x-epoch": String(t) } : {}) as Record<string, string>,
      }));
      const ids = await transaction(testDb.db, (tx) =>
        writeOutbox(
          tx,
          messages.map((m) => ({ subject: m.subject, payload: encode(m.text), headers: m.headers })),
        ),
      );
      messages.forEach((m, i) => {
        written.push({ ...m, id: ids[i]! });
      });
      relay.poke();
    }
    await bus.waitForStored(written.length);
    await relay.stop();

    expect(bus.attempts.map((m) => m.id)).toEqual(written.map((m) => m.id));
    expect(
      bus.stored.map((m) => ({ id: m.id, subject: m.subject, text: decode(m.data), headers: m.headers })),
    ).toEqual(written);
    expect((await outboxBacklog(testDb.db)).count).toBe(0);
  });

  it("keeps the commit order of producers serialised by a row lock on their key", async () => {
    await testDb.db.insert(groups).values({ id: "g1" });
    const bus = new RecordingBus();
    const relay = startRelay(testDb, bus, { batchSize: 3 });
    const commits = 24;
    // Like DS commits to one group: lock the group row, bump the epoch, write the fan-out.
    await Promise.all(
      Array.from({ length: commits }, async () => {
        await transaction(testDb.db, async (tx) => {
          const [group] = await tx.select().from(groups).where(eq(groups.id, "g1")).for("update");
          const epoch = (group?.epoch ?? 0n) + 1n;
          await tx.update(groups).set({ epoch }).where(eq(groups.id, "g1"));
          await writeOutbox(tx, [{ subject: "fanout.g1", payload: encode(String(epoch)) }]);
        });
        relay.poke();
      }),
    );
    await bus.waitForStored(commits);
    expect(bus.stored.map((m) => decode(m.data))).toEqual(
      Array.from({ length: commits }, (_, i) => String(i + 1)),
    );
  });

  it("re-publishes with the same id after a crash between publish and delete", async () => {
    const replica = await driver.crashable(testDb);
    try {
      const ids = await transaction(replica.handle.db, (tx) =>
        writeOutbox(
          tx,
          Array.from({ length: 5 }, (_, i) => ({ subject: "fanout.g1", payload: encode(`m${i}`) })),
        ),
      );
      const bus = new RecordingBus();
      const stored = deferred();
      const ackNeverComes = deferred();
      bus.hooks.afterStore = async () => {
        bus.hooks = {};
        stored.resolve();
        await ackNeverComes.promise;
      };
      const crashed = startRelay(replica.handle, bus);
      crashed.poke();
      await stored.promise; // the first message is on the bus, its row not yet deleted
      await replica.crash();

      const restarted = await replica.restart();
      const relay = startRelay(restarted, bus);
      relay.poke();
      await bus.waitForStored(5);
      await bus.waitForAttempts(6);
      ackNeverComes.resolve(); // the dead relay's publish "returns"; its delete fails, it stops
      await crashed.stop();
      await relay.stop();

      expect(bus.attempts.map((m) => m.id)).toEqual([ids[0], ...ids]);
      expect(bus.stored.map((m) => m.id)).toEqual(ids);
      expect((await outboxBacklog(restarted.db)).count).toBe(0);
    } finally {
      await replica.cleanup();
    }
  });

  it("runs relays on several replicas at once without double or out-of-order publishing", async () => {
    const other = await driver.replica(testDb);
    try {
      const bus = new RecordingBus();
      // Slow acks widen the window in which two relays could overlap.
      bus.hooks.beforeStore = () => new Promise((resolve) => setImmediate(resolve));
      const relays = [
        startRelay(testDb, bus, { batchSize: 5 }),
        startRelay(other, bus, { batchSize: 5 }),
        startRelay(other, bus, { batchSize: 7 }),
      ];
      const subjects = ["fanout.a", "fanout.b", "fanout.c", "fanout.d"];
      const perSubject = 15;
      const written = new Map<string, string[]>();
      await Promise.all(
        subjects.map(async (subject, w) => {
          const ids: string[] = [];
          written.set(subject, ids);
          for (let i = 0; i < perSubject; i++) {
            const [id] = await transaction(testDb.db, (tx) =>
              writeOutbox(tx, [{ subject, payload: encode(`${subject}:${i}`) }]),
            );
            ids.push(id!);
            relays[(w + i) % relays.length]!.poke();
          }
        }),
      );
      const total = subjects.length * perSubject;
      await bus.waitForStored(total);
      await Promise.all(relays.map((relay) => relay.stop()));

      expect(bus.concurrentDuplicates).toEqual([]);
      expect(bus.attempts).toHaveLength(total); // nobody published a message twice
      for (const subject of subjects) {
        expect(bus.stored.filter((m) => m.subject === subject).map((m) => m.id)).toEqual(
          written.get(subject),
        );
      }
      expect((await outboxBacklog(testDb.db)).count).toBe(0);
    } finally {
      await other.close();
    }
  });

  it("retries while the bus fails and loses nothing", async () => {
    const bus = new RecordingBus();
    bus.setFailing(true);
    let failures = 0;
    const failedThrice = deferred();
    const relay = startRelay(testDb, bus, {
      retryDelayMs: 5,
      maxRetryDelayMs: 20,
      onError: () => {
        if (++failures === 3) failedThrice.resolve();
      },
    });
    const ids = await transaction(testDb.db, (tx) =>
      writeOutbox(
        tx,
        Array.from({ length: 6 }, (_, i) => ({ subject: "fanout.g1", payload: encode(`m${i}`) })),
      ),
    );
    relay.poke();
    await failedThrice.promise;
    expect(bus.stored).toEqual([]);
    const backlog = await outboxBacklog(testDb.db);
    expect(backlog.count).toBe(6);
    expect(backlog.oldestCreatedAt).toBeInstanceOf(Date);

    // Back up, then one publish in the middle of the next batch fails once more.
    let seen = 0;
    bus.hooks.beforeStore = () => {
      if (++seen === 3) throw new Error("stream leader changed");
    };
    bus.setFailing(false);
    relay.poke();
    await bus.waitForStored(6);
    await relay.stop();

    expect(bus.stored.map((m) => m.id)).toEqual(ids);
    expect((await outboxBacklog(testDb.db)).count).toBe(0);
  });

  it("with several publishes in flight keeps each subject's order", async () => {
    const bus = new RecordingBus();
    // Random ack latency: without per-subject ordering, later messages would overtake.
    bus.hooks.beforeStore = () => new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
    const relay = startRelay(testDb, bus, { maxInFlight: 8, batchSize: 50 });
    const subjects = ["fanout.a", "fanout.b", "fanout.c"];
    const messages = Array.from({ length: 60 }, (_, i) => ({
      subject: subjects[(i * 7) % 3]!,
      payload: encode(String(i)),
    }));
    const ids = await transaction(testDb.db, (tx) => writeOutbox(tx, messages));
    relay.poke();
    await bus.waitForStored(messages.length);
    for (const subject of subjects) {
      expect(bus.stored.filter((m) => m.subject === subject).map((m) => m.id)).toEqual(
        ids.filter((_, i) => messages[i]!.subject === subject),
      );
    }
  });

  it("stop() lets the publish in flight finish and marks it", async () => {
    const bus = new RecordingBus();
    const inFlight = deferred();
    const ack = deferred();
    bus.hooks.beforeStore = async () => {
      bus.hooks = {};
      inFlight.resolve();
      await ack.promise;
    };
    const relay = startRelay(testDb, bus, { batchSize: 1 });
    const ids = await transaction(testDb.db, (tx) =>
      writeOutbox(tx, [
        { subject: "fanout.g1", payload: encode("first") },
        { subject: "fanout.g1", payload: encode("second") },
      ]),
    );
    relay.poke();
    await inFlight.promise;
    const stopped = relay.stop();
    ack.resolve();
    await stopped;
    expect(bus.stored.map((m) => decode(m.data))).toEqual(["first"]);
    // The first is marked (deleted); the second waits for the next relay.
    expect((await testDb.db.select().from(outbox)).map((row) => row.id)).toEqual([ids[1]]);
  });

  it("refuses messages that could never be published, writing none of the batch", async () => {
    await expect(
      transaction(testDb.db, (tx) =>
        writeOutbox(tx, [
          { subject: "fanout.g1", payload: encode("ok") },
          { subject: "fanout.*", payload: encode("wildcard") },
        ]),
      ),
    ).rejects.toThrow(OutboxMessageError);
    for (const subject of ["", "fanout..g1", "fanout g1", "fanout.>"]) {
      await expect(writeOutbox(testDb.db, [{ subject, payload: encode("x") }])).rejects.toThrow(
        OutboxMessageError,
      );
    }
    expect((await outboxBacklog(testDb.db)).count).toBe(0);
  });

  it("stores payloads and headers sealed: the raw rows hold neither", async () => {
    const needle = `fanout-secret-${randomBytes(6).toString("hex")}`;
    const header = `peer-${randomBytes(6).toString("hex")}.example`;
    const [id] = await transaction(testDb.db, (tx) =>
      writeOutbox(tx, [{ subject: "fanout.g1", payload: encode(needle), headers: { "x-source": header } }]),
    );
    // What a copy of the table (or of its deleted rows in the files) holds: every column as bytes.
    const raw = await testDb.db.execute<{ row: string }>(
      sql`SELECT encode(convert_to(o::text, 'UTF8'), 'base64') AS row FROM phoenix_runtime.outbox o`,
    );
    const bytes = Buffer.concat(
      (raw as unknown as { rows: { row: string }[] }).rows.map((r) => Buffer.from(r.row, "base64")),
    );
    const payloads = await testDb.db.select({ payload: outbox.payload }).from(outbox);
    const stored = Buffer.concat(payloads.map((r) => Buffer.from(r.payload)));
    for (const haystack of [bytes, stored]) {
      for (const secret of [needle, header]) {
        expect(haystack.includes(Buffer.from(secret))).toBe(false);
        expect(haystack.toString("latin1").includes(Buffer.from(secret).toString("hex"))).toBe(false);
      }
    }
    const bus = new RecordingBus();
    const relay = new OutboxRelay({ database: testDb, bus, sealer });
    expect(await relay.runOnce()).toEqual({ acquired: true, published: 1 });
    expect(bus.stored.map((m) => ({ id: m.id, text: decode(m.data), headers: m.headers }))).toEqual([
      { id, text: needle, headers: { "x-source": header } },
    ]);
  });

  it("under another key refuses to publish, names the problem and keeps the row", async () => {
    const ids = await transaction(testDb.db, (tx) =>
      writeOutbox(tx, [{ subject: "fanout.g1", payload: encode("sealed under the old secret") }]),
    );
    const bus = new RecordingBus();
    const other = new PayloadSealer(OUTBOX_PAYLOAD, "TEST_OUTBOX_SECRET", randomBytes(32));
    const wrong = new OutboxRelay({ database: testDb, bus, sealer: other });
    const failure = wrong.runOnce();
    await expect(failure).rejects.toThrow(OutboxPublishError);
    await expect(failure).rejects.toThrow(
      /not published: .*does not open under the key derived from TEST_OUTBOX_SECRET/,
    );
    expect(bus.attempts).toEqual([]);
    expect((await outboxBacklog(testDb.db)).count).toBe(1);

    // With the right key the kept row goes out: nothing was lost.
    const relay = new OutboxRelay({ database: testDb, bus, sealer });
    expect(await relay.runOnce()).toEqual({ acquired: true, published: 1 });
    expect(bus.stored.map((m) => m.id)).toEqual(ids);
  });

  it("opens rows sealed under the previous secret after a rotation", async () => {
    const oldSecret = randomBytes(32);
    const before = new PayloadSealer(OUTBOX_PAYLOAD, "TEST_OUTBOX_SECRET", oldSecret);
    const after = new PayloadSealer(OUTBOX_PAYLOAD, "TEST_OUTBOX_SECRET", randomBytes(32), [oldSecret]);
    const [first] = await writeSealed(testDb.db, [{ subject: "fanout.g1", payload: encode("old") }], before);
    const [second] = await writeSealed(testDb.db, [{ subject: "fanout.g1", payload: encode("new") }], after);
    const bus = new RecordingBus();
    expect(await new OutboxRelay({ database: testDb, bus, sealer: after }).runOnce()).toEqual({
      acquired: true,
      published: 2,
    });
    expect(bus.stored.map((m) => [m.id, decode(m.data)])).toEqual([
      [first, "old"],
      [second, "new"],
    ]);
  });

  it("refuses a sealed payload moved to another row", async () => {
    const [a, b] = await transaction(testDb.db, (tx) =>
      writeOutbox(tx, [
        { subject: "fanout.g1", payload: encode("for g1") },
        { subject: "fanout.g2", payload: encode("for g2") },
      ]),
    );
    const [rowB] = await testDb.db.select().from(outbox).where(eq(outbox.id, b!));
    await testDb.db.update(outbox).set({ payload: rowB!.payload }).where(eq(outbox.id, a!));
    const bus = new RecordingBus();
    await expect(new OutboxRelay({ database: testDb, bus, sealer }).runOnce()).rejects.toThrow(
      /outbox message .* on fanout\.g1 not published/,
    );
    expect(bus.attempts).toEqual([]);
    expect((await outboxBacklog(testDb.db)).count).toBe(2);
  });

  it("still relays plaintext rows written before sealing, as they are", async () => {
    // A row of an earlier version: `sealed` takes its default (false) from the migration.
    await testDb.db.execute(
      sql`INSERT INTO phoenix_runtime.outbox (id, subject, payload, headers)
          VALUES ('pre-upgrade', 'fanout.g1', ${Buffer.from("legacy fan-out")}, '{"x-n":"7"}'::jsonb)`,
    );
    const ids = await transaction(testDb.db, (tx) =>
      writeOutbox(tx, [{ subject: "fanout.g1", payload: encode("sealed fan-out") }]),
    );
    const bus = new RecordingBus();
    expect(await new OutboxRelay({ database: testDb, bus, sealer }).runOnce()).toEqual({
      acquired: true,
      published: 2,
    });
    expect(bus.stored.map((m) => ({ id: m.id, text: decode(m.data), headers: m.headers }))).toEqual([
      { id: "pre-upgrade", text: "legacy fan-out", headers: { "x-n": "7" } },
      { id: ids[0], text: "sealed fan-out", headers: {} },
    ]);
  });
});
