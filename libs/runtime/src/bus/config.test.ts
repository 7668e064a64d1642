import { PGlite } from "@electric-sql/pglite";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { drizzle } from "drizzle-orm/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../db/types.js";
import { BusConfigError, busConfig, openBus } from "./config.js";

describe("bus config", () => {
  let pglite: PGlite;
  let db: Database;

  beforeAll(async () => {
    pglite = await PGlite.create();
    db = drizzle({ client: pglite });
  });

  afterAll(async () => {
    await pglite?.close();
  });

  it("reads NATS_URL (one or several servers) and treats empty variables as unset", () => {
    expect(busConfig.parse({ NATS_URL: "nats://127.0.0.1:4222" }).NATS_URL).toBe("nats://127.0.0.1:4222");
    expect(busConfig.parse({ NATS_URL: "nats://a:4222, nats://b:4222" }).NATS_URL).toBe(
      "nats://a:4222, nats://b:4222",
    );
    expect(busConfig.parse({ NATS_URL: "", BUS_DRAIN_TIMEOUT_MS: "" })).toEqual({});
    expect(busConfig.parse({ BUS_DRAIN_TIMEOUT_MS: "2500" }).BUS_DRAIN_TIMEOUT_MS).toBe(2500);
  });

  it("names the bad variable", () => {
    const bad = busConfig.safeParse({ NATS_URL: "http://127.0.0.1:4222" });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(["NATS_URL"]);
    const negative = busConfig.safeParse({ BUS_DRAIN_TIMEOUT_MS: "-1" });
    expect(negative.error?.issues[0]?.path).toEqual(["BUS_DRAIN_TIMEOUT_MS"]);
  });

  it("opens NATS when NATS_URL is set", async () => {
    const url = process.env.NATS_URL;
    if (!url) throw new Error("NATS_URL is not set: run the tests through vitest");
    const bus = await openBus(busConfig.parse({ NATS_URL: url }), { name: "config-test" });
    try {
      const received: string[] = [];
      const subject = `cfg.${Date.now()}.${Math.random().toString(36).slice(2)}`;
      await bus.listen(subject, (s) => received.push(s));
      // No database was given, so only NATS can be behind it; a second connection hears the notify.
      const other = await openBus(busConfig.parse({ NATS_URL: url }), { name: "config-test-2" });
      await other.notify(subject, new Uint8Array([1]));
      await expect.poll(() => received, { timeout: 10_000 }).toEqual([subject]);
      await other.close();
    } finally {
      await bus.close();
    }
  });

  it("creates streams with NATS_STREAM_REPLICAS copies, and refuses more than the servers can hold", async () => {
    const url = process.env.NATS_URL;
    if (!url) throw new Error("NATS_URL is not set: run the tests through vitest");
    expect(busConfig.safeParse({ NATS_STREAM_REPLICAS: "0" }).error?.issues[0]?.path).toEqual([
      "NATS_STREAM_REPLICAS",
    ]);
    const name = `CFG_R_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`.toUpperCase();
    const one = await openBus(busConfig.parse({ NATS_URL: url, NATS_STREAM_REPLICAS: "1" }), {
      name: "config-test-r1",
    });
    const nc = await connect({ servers: url });
    try {
      await one.ensureStream({ name, subjects: [`${name.toLowerCase()}.>`] });
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info(name)).config.num_replicas).toBe(1);
      // The test server is a single node: three copies cannot be placed, and the bus says so
      // instead of creating a stream with fewer copies than the operator asked for.
      const three = await openBus(busConfig.parse({ NATS_URL: url, NATS_STREAM_REPLICAS: "3" }), {
        name: "config-test-r3",
      });
      try {
        await expect(
          three.ensureStream({ name: `${name}_3`, subjects: [`${name.toLowerCase()}3.>`] }),
        ).rejects.toThrow(new RegExp(`stream ${name}_3`));
      } finally {
        await three.close();
      }
      await jsm.streams.delete(name);
    } finally {
      await nc.close();
      await one.close();
    }
  });

  it("opens the embedded bus in the given database when NATS_URL is unset, and needs one", async () => {
    await expect(openBus(busConfig.parse({}), { name: "config-test" })).rejects.toBeInstanceOf(
      BusConfigError,
    );
    const bus = await openBus(busConfig.parse({}), { name: "config-test", db });
    try {
      await bus.ensureStream({ name: "CFG", subjects: ["cfg.>"] });
      const ack = await bus.publish("cfg.one", new Uint8Array([1]), { id: "cfg-1" });
      expect(ack).toEqual({ stream: "CFG", seq: 1, duplicate: false });
      const rows = await pglite.query<{ count: number }>(
        "SELECT count(*)::int AS count FROM phoenix_bus.messages WHERE stream = 'CFG'",
      );
      expect(rows.rows[0]?.count).toBe(1);
    } finally {
      await bus.close();
    }
  });
});
