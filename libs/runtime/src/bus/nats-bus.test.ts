import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JetStreamManager, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../testing/eventually.js";
import { freePort, NATS_SERVER_BINARY, waitForPort } from "../testing/local-ports.js";
import { describeBusContract } from "./bus-contract.js";
import { connectNatsBus } from "./nats-bus.js";
import type { BusMessage } from "./types.js";

const natsUrl = (): string => {
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set: run the tests through vitest (its global setup sets it)");
  return url;
};

let admin: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  admin = await connect({ servers: natsUrl(), name: "bus-contract-admin" });
  jsm = await jetstreamManager(admin);
});

afterAll(async () => {
  await admin?.close();
});

describeBusContract("NATS JetStream bus", {
  open: (options) => connectNatsBus({ servers: natsUrl(), name: "bus-contract", ...options }),
  removeStream: async (name) => {
    await jsm.streams.delete(name).catch(() => false);
  },
  storedMessages: async (name) => (await jsm.streams.info(name)).state.messages,
});

/** A private nats-server (JetStream, file store in `dir`) that the test may kill and restart. */
async function startServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER_BINARY, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], {
    stdio: "ignore",
  });
  await waitForPort(port);
  return child;
}

async function killServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

describe.skipIf(!existsSync(NATS_SERVER_BINARY))("NATS JetStream bus across a NATS restart", () => {
  it("keeps consuming after the server is killed and restarted, losing no acknowledged publish", async () => {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), "bus-nats-restart-"));
    let server = await startServer(port, dir);
    const errors: unknown[] = [];
    const bus = await connectNatsBus({
      servers: `nats://127.0.0.1:${port}`,
      name: "bus-restart-test",
      pullExpiresMs: 2000,
      requestTimeoutMs: 2000,
      onError: (error) => errors.push(error),
    });
    try {
      const prefix = `br${randomBytes(4).toString("hex")}`;
      await bus.ensureStream({ name: `S_${prefix}`, subjects: [`${prefix}.>`] });
      const received: BusMessage[] = [];
      await bus.consume({ stream: `S_${prefix}`, durable: "resumes", ackWaitMs: 5000 }, async (msg) => {
        received.push(msg);
      });
      await bus.publish(`${prefix}.m`, new TextEncoder().encode("before"), { id: "before" });
      await expect.poll(() => received.map((m) => m.id), { timeout: 15_000 }).toContain("before");

      await killServer(server);
      server = await startServer(port, dir);

      // Publishes fail while the client reconnects; the outbox relay retries like this.
      await eventually(
        () =>
          bus.publish(`${prefix}.m`, new TextEncoder().encode("after"), { id: "after" }).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 15_000, intervalMs: 250, message: "a publish to succeed after the restart" },
      );
      await expect.poll(() => received.map((m) => m.id), { timeout: 30_000 }).toContain("after");
    } finally {
      await bus.close();
      await killServer(server);
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe("NATS JetStream bus: streams of an earlier version (limits retention)", () => {
  it("recreates the stream as a work queue, carrying over only the messages not yet handled", async () => {
    const prefix = `bm${randomBytes(4).toString("hex")}`;
    const stream = `S_${prefix}`;
    // What the previous version left: limits retention, no age limit, one durable that acked
    // the first two of four messages.
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], retention: RetentionPolicy.Limits });
    const old = await connectNatsBus({ servers: natsUrl(), name: "bus-migration-old", drainTimeoutMs: 100 });
    const bus = await connectNatsBus({ servers: natsUrl(), name: "bus-migration-new" });
    try {
      for (const id of ["m1", "m2", "m3", "m4"]) {
        await old.publish(`${prefix}.job`, new TextEncoder().encode(id), { id, headers: { n: id } });
      }
      const handledByOld: string[] = [];
      const sub = await old.consume({ stream, durable: "worker", maxInFlight: 1 }, async (msg) => {
        handledByOld.push(msg.id);
        // The old consumer "stops" after two messages: those two are acked, the rest are not.
        if (handledByOld.length >= 2) await new Promise(() => {});
      });
      await expect.poll(() => handledByOld.length, { timeout: 10_000 }).toBe(2);
      await expect
        .poll(async () => (await jsm.consumers.info(stream, "worker")).ack_floor.stream_seq, {
          timeout: 10_000,
        })
        .toBe(1);
      void sub.stop();
      await old.close();

      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      const info = await jsm.streams.info(stream);
      expect(info.config.retention).toBe(RetentionPolicy.Workqueue);
      expect(info.config.max_age).toBeGreaterThan(0);
      expect(info.state.messages).toBe(3);
      const received: BusMessage[] = [];
      await bus.consume({ stream, durable: "worker" }, async (msg) => {
        received.push(msg);
      });
      await expect.poll(() => received.map((m) => m.id), { timeout: 10_000 }).toEqual(["m2", "m3", "m4"]);
      expect(received.map((m) => m.headers)).toEqual([{ n: "m2" }, { n: "m3" }, { n: "m4" }]);
      await expect
        .poll(async () => (await jsm.streams.info(stream)).state.messages, { timeout: 10_000 })
        .toBe(0);
      // Ensuring it again leaves it as it is.
      await bus.ensureStream({ name: stream, subjects: [`${prefix}.>`], retention: "workqueue" });
      expect((await jsm.streams.info(stream)).config.sealed).toBe(false);
    } finally {
      await bus.close();
      await jsm.streams.delete(stream).catch(() => false);
    }
  }, 60_000);
});
