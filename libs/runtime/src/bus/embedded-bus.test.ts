import { randomBytes } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import { BUS_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../db/types.js";
import { describeBusContract } from "./bus-contract.js";
import { createEmbeddedBus } from "./embedded-bus.js";
import type { Bus, BusMessage } from "./types.js";

let pglite: PGlite;
let pgliteDb: Database;

beforeAll(async () => {
  pglite = await PGlite.create();
  pgliteDb = drizzlePglite({ client: pglite });
});

afterAll(async () => {
  await pglite?.close();
});

describeBusContract("embedded bus on PGlite", {
  open: (options) => createEmbeddedBus({ db: pgliteDb, ...options }),
  storedMessages: async (stream) => {
    const result = await pglite.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM phoenix_bus.messages WHERE stream = $1",
      [stream],
    );
    return result.rows[0]?.n ?? 0;
  },
});

const sealer = new PayloadSealer(BUS_PAYLOAD, "BUS_PAYLOAD_KEY", randomBytes(32));

describeBusContract("embedded bus on PGlite, sealing payloads", {
  open: (options) => createEmbeddedBus({ db: pgliteDb, sealer, ...options }),
  storedMessages: async (stream) => {
    const result = await pglite.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM phoenix_bus.messages WHERE stream = $1",
      [stream],
    );
    return result.rows[0]?.n ?? 0;
  },
});

describe("embedded bus on PGlite, sealing payloads at rest", () => {
  /** Every stored row of `stream` as text, as a copy of the table would show it. */
  async function rawRows(stream: string): Promise<string> {
    const result = await pglite.query<{ row: string }>(
      "SELECT m::text AS row FROM phoenix_bus.messages m WHERE stream = $1",
      [stream],
    );
    return result.rows.map((r) => r.row).join("\n");
  }
  async function storedCount(stream: string): Promise<number> {
    const result = await pglite.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM phoenix_bus.messages WHERE stream = $1",
      [stream],
    );
    return result.rows[0]?.n ?? 0;
  }

  it("stores neither body nor headers in the clear and delivers the original bytes", async () => {
    const bus = await createEmbeddedBus({ db: pgliteDb, sealer });
    try {
      const prefix = `sl${randomBytes(4).toString("hex")}`;
      const stream = `S_${prefix}`;
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      const needle = `leaf-credential-${randomBytes(6).toString("hex")}`;
      const body = new Uint8Array([0, 255, ...new TextEncoder().encode(needle), 7]);
      const header = `peer-${randomBytes(6).toString("hex")}.example`;
      await bus.publish(`${prefix}.fanout`, body, { id: "m1", headers: { "x-source": header } });
      const raw = await rawRows(stream);
      expect(raw).not.toBe("");
      for (const secret of [needle, header]) {
        expect(raw).not.toContain(secret);
        expect(raw).not.toContain(Buffer.from(secret).toString("hex"));
      }
      const received: BusMessage[] = [];
      await bus.consume({ stream, durable: "worker" }, async (msg) => {
        received.push(msg);
      });
      await expect.poll(() => received.length, { timeout: 10_000 }).toBe(1);
      expect([...received[0]!.data]).toEqual([...body]);
      expect(received[0]!.headers).toEqual({ "x-source": header });
      expect(received[0]!.id).toBe("m1");
    } finally {
      await bus.close();
    }
  });

  it("does not deliver a message under another key, says why, and keeps it", async () => {
    const prefix = `sk${randomBytes(4).toString("hex")}`;
    const stream = `S_${prefix}`;
    const writer = await createEmbeddedBus({ db: pgliteDb, sealer });
    const errors: unknown[] = [];
    const other = new PayloadSealer(BUS_PAYLOAD, "BUS_PAYLOAD_KEY", randomBytes(32));
    const wrong = await createEmbeddedBus({
      db: pgliteDb,
      sealer: other,
      onError: (error) => errors.push(error),
    });
    try {
      await writer.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      await writer.publish(`${prefix}.fanout`, new TextEncoder().encode("kept"), { id: "m1" });
      const wrongSeen: BusMessage[] = [];
      const sub = await wrong.consume({ stream, durable: "worker" }, async (msg) => {
        wrongSeen.push(msg);
      });
      await expect.poll(() => errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
      await sub.stop();
      expect(String(errors[0])).toMatch(
        new RegExp(
          `embedded bus message ${stream}#1 does not open under the key derived from BUS_PAYLOAD_KEY`,
        ),
      );
      expect(wrongSeen).toEqual([]);
      expect(await storedCount(stream)).toBe(1);

      // With the right key the same durable gets it: nothing was lost.
      const received: BusMessage[] = [];
      await writer.consume({ stream, durable: "worker" }, async (msg) => {
        received.push(msg);
      });
      await expect
        .poll(() => received.map((m) => new TextDecoder().decode(m.data)), { timeout: 10_000 })
        .toEqual(["kept"]);
      await expect.poll(() => storedCount(stream), { timeout: 10_000 }).toBe(0);
    } finally {
      await wrong.close();
      await writer.close();
    }
  });

  it("delivers messages stored before the sealer was configured as they are", async () => {
    const prefix = `su${randomBytes(4).toString("hex")}`;
    const stream = `S_${prefix}`;
    const before = await createEmbeddedBus({ db: pgliteDb });
    await before.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
    await before.publish(`${prefix}.fanout`, new TextEncoder().encode("old"), {
      id: "m1",
      headers: { "x-n": "1" },
    });
    await before.close();
    const after = await createEmbeddedBus({ db: pgliteDb, sealer });
    try {
      await after.publish(`${prefix}.fanout`, new TextEncoder().encode("new"), { id: "m2" });
      const received: BusMessage[] = [];
      await after.consume({ stream, durable: "worker" }, async (msg) => {
        received.push(msg);
      });
      await expect
        .poll(() => received.map((m) => [m.id, new TextDecoder().decode(m.data), m.headers]), {
          timeout: 10_000,
        })
        .toEqual([
          ["m1", "old", { "x-n": "1" }],
          ["m2", "new", {}],
        ]);
    } finally {
      await after.close();
    }
  });
});

describe("embedded bus on PGlite, beyond the contract", () => {
  it("turning a stream of an earlier version into a work queue drops what its durables handled", async () => {
    const bus = await createEmbeddedBus({ db: pgliteDb });
    try {
      const prefix = `mg${randomBytes(4).toString("hex")}`;
      const stream = `S_${prefix}`;
      const stored = async (): Promise<number> =>
        (
          await pglite.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM phoenix_bus.messages WHERE stream = $1",
            [stream],
          )
        ).rows[0]?.n ?? 0;
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "limits" });
      for (const id of ["m1", "m2"]) await bus.publish(`${prefix}.job`, new TextEncoder().encode(id), { id });
      const seen: string[] = [];
      const sub = await bus.consume({ stream, durable: "worker" }, async (msg) => {
        seen.push(msg.id);
      });
      await expect.poll(() => seen, { timeout: 10_000 }).toEqual(["m1", "m2"]);
      await sub.stop();
      await bus.publish(`${prefix}.job`, new TextEncoder().encode("m3"), { id: "m3" });
      // Limits retention keeps what was acked.
      expect(await stored()).toBe(3);
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      expect(await stored()).toBe(1);
      await bus.consume({ stream, durable: "worker" }, async (msg) => {
        seen.push(msg.id);
      });
      await expect.poll(() => seen, { timeout: 10_000 }).toEqual(["m1", "m2", "m3"]);
      await expect.poll(stored, { timeout: 10_000 }).toBe(0);
    } finally {
      await bus.close();
    }
  });

  it("finds a filtered durable's message behind more than one scan of other subjects", async () => {
    const bus = await createEmbeddedBus({ db: pgliteDb });
    try {
      const prefix = `fs${randomBytes(4).toString("hex")}`;
      await bus.ensureStream({ name: `S_${prefix}`, subjects: [`${prefix}.>`] });
      // More non-matching messages than one claim looks at (1000), then the one that matches.
      await pglite.query(
        `INSERT INTO phoenix_bus.messages (stream, seq, subject, msg_id, data, headers)
         SELECT $1, n, $2, 'noise-' || n, '\\x00'::bytea, '{}'::jsonb FROM generate_series(1, 2500) AS n`,
        [`S_${prefix}`, `${prefix}.noise`],
      );
      await pglite.query("UPDATE phoenix_bus.streams SET last_seq = 2500 WHERE name = $1", [`S_${prefix}`]);
      await bus.publish(`${prefix}.wanted`, new TextEncoder().encode("here"), { id: "wanted" });
      const received: BusMessage[] = [];
      await bus.consume(
        { stream: `S_${prefix}`, durable: "picky", filterSubject: `${prefix}.wanted` },
        async (msg) => {
          received.push(msg);
        },
      );
      await expect
        .poll(() => received.map((m) => [m.id, m.seq]), { timeout: 10_000 })
        .toEqual([["wanted", 2501]]);
    } finally {
      await bus.close();
    }
  });
});

/** A fresh database on the Postgres server of `DATABASE_URL`, dropped at the end. */
function postgresDatabase(): { url: () => string; pool: () => pg.Pool; newPool: () => pg.Pool } {
  const name = `bus_test_${randomBytes(6).toString("hex")}`;
  const pools: pg.Pool[] = [];
  let url = "";
  const admin = async (statement: string): Promise<void> => {
    const serverUrl = process.env.DATABASE_URL;
    if (!serverUrl) throw new Error("DATABASE_URL is not set: run the tests through vitest");
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  // idleTimeoutMillis 0: idle pooled connections hold no timers, so the leak check sees only the bus.
  const newPool = (): pg.Pool => {
    const pool = new pg.Pool({ connectionString: url, max: 5, idleTimeoutMillis: 0 });
    pool.on("error", () => {});
    pools.push(pool);
    return pool;
  };
  beforeAll(async () => {
    await admin(`CREATE DATABASE "${name}"`);
    const parsed = new URL(process.env.DATABASE_URL ?? "");
    parsed.pathname = `/${name}`;
    url = parsed.toString();
    newPool();
  });
  afterAll(async () => {
    await Promise.all(pools.filter((pool) => !pool.ended).map((pool) => pool.end()));
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
  return { url: () => url, pool: () => pools[0]!, newPool };
}

describe("embedded bus on Postgres", () => {
  const database = postgresDatabase();
  describeBusContract("contract", {
    open: (options) => createEmbeddedBus({ db: drizzlePg({ client: database.pool() }), ...options }),
    storedMessages: async (stream) => {
      const result = await database
        .pool()
        .query<{ n: number }>("SELECT count(*)::int AS n FROM phoenix_bus.messages WHERE stream = $1", [
          stream,
        ]);
      return result.rows[0]?.n ?? 0;
    },
  });

  it("hands a dead process's unacked message to another process, and shares work across processes", async () => {
    // Two pools stand for two homeserver processes: no in-process wake-ups between them.
    const poolA = database.newPool();
    const poolB = database.newPool();
    const opened: Bus[] = [];
    try {
      const a = await createEmbeddedBus({
        db: drizzlePg({ client: poolA }),
        drainTimeoutMs: 50,
        pollIntervalMs: 100,
      });
      opened.push(a);
      const prefix = `xp${randomBytes(4).toString("hex")}`;
      const stream = `S_${prefix}`;
      await a.ensureStream({ name: stream, subjects: [`${prefix}.>`] });
      const options = { stream, durable: "shared", ackWaitMs: 500, maxInFlight: 2 };
      const seenByA: BusMessage[] = [];
      await a.consume(options, async (msg) => {
        seenByA.push(msg);
        if (msg.id === "dies") await new Promise(() => {}); // never settles: the process dies
      });
      await a.publish(`${prefix}.job`, new TextEncoder().encode("x"), { id: "dies" });
      await expect.poll(() => seenByA.length, { timeout: 10_000 }).toBe(1);
      await a.close();
      await poolA.end();

      const b = await createEmbeddedBus({ db: drizzlePg({ client: poolB }), pollIntervalMs: 100 });
      opened.push(b);
      const c = await createEmbeddedBus({
        db: drizzlePg({ client: database.newPool() }),
        pollIntervalMs: 100,
      });
      opened.push(c);
      const seenByB: BusMessage[] = [];
      const seenByC: BusMessage[] = [];
      const slow = (into: BusMessage[]) => async (msg: BusMessage) => {
        into.push(msg);
        // A slow handler on purpose: both instances hold claims at once, so the work is shared.
        await new Promise((resolve) => setTimeout(resolve, 20));
      };
      await b.consume(options, slow(seenByB));
      await c.consume(options, slow(seenByC));
      await expect
        .poll(() => [...seenByB, ...seenByC].find((m) => m.id === "dies")?.deliveryCount, { timeout: 10_000 })
        .toBe(2);
      for (let i = 0; i < 20; i++)
        await c.publish(`${prefix}.job`, new TextEncoder().encode(`${i}`), { id: `j-${i}` });
      await expect.poll(() => seenByB.length + seenByC.length, { timeout: 10_000 }).toBe(21);
      const ids = [...seenByB, ...seenByC].map((m) => m.id);
      expect(new Set(ids).size).toBe(21);
      expect(seenByB.length).toBeGreaterThan(0);
      expect(seenByC.length).toBeGreaterThan(0);
    } finally {
      await Promise.all(opened.map((bus) => bus.close()));
    }
  });
});
