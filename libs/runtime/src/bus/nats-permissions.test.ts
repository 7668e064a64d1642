import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, NATS_SERVER_BINARY, waitForPort } from "../testing/local-ports.js";
import {
  type BusTopology,
  busTopology,
  fanOutStream,
  federationOutboundStream,
  OUTBOUND_SCOUT_DURABLE,
  queueDeletedStream,
} from "./layout.js";
import { connectNatsBus } from "./nats-bus.js";
import {
  deploymentNatsUsers,
  NATS_SERVICES,
  type NatsService,
  natsAuthorization,
} from "./nats-permissions.js";
import type { Bus, BusMessage } from "./types.js";

const REPO = join(import.meta.dirname, "../../../..");

describe("NATS permissions from the bus layout", () => {
  it("the shipped NATS configs carry the generated per-service users", async () => {
    const block = natsAuthorization(deploymentNatsUsers());
    expect(await readFile(join(REPO, "deploy/nats-authorization.conf"), "utf8")).toBe(block);
    expect(await readFile(join(REPO, "k8s/charts/phoenix/files/nats-authorization.conf"), "utf8")).toBe(
      block,
    );
    expect(await readFile(join(REPO, "deploy/nats.conf"), "utf8")).toContain(
      "include nats-authorization.conf",
    );
  });
});

describe.skipIf(!existsSync(NATS_SERVER_BINARY))("NATS with per-service users", () => {
  const ns = `np${randomBytes(4).toString("hex")}`;
  // Stream names of its own: the permissions follow the topology's names, whatever they are.
  const names: BusTopology = {
    ...busTopology(ns),
    streams: { fanOut: `FANOUT_${ns}`, queueDeleted: `QDEL_${ns}`, federation: `OUT_${ns}` },
  };
  const passwords = Object.fromEntries(NATS_SERVICES.map((s) => [s, `p${randomBytes(12).toString("hex")}`]));
  let dir: string;
  let server: ChildProcess;
  let url: string;
  const buses: Bus[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bus-nats-auth-"));
    const port = await freePort();
    const users = NATS_SERVICES.map((service) => ({
      service,
      user: service,
      password: passwords[service] as string,
    }));
    await writeFile(
      join(dir, "nats.conf"),
      `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(join(dir, "js"))} }\n${natsAuthorization(users, names)}`,
    );
    server = spawn(NATS_SERVER_BINARY, ["--config", join(dir, "nats.conf")], { stdio: "ignore" });
    await waitForPort(port);
    url = `nats://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  async function as(service: NatsService, password = passwords[service] as string): Promise<Bus> {
    const bus = await connectNatsBus({
      servers: url,
      name: `test-${service}`,
      user: service,
      pass: password,
      requestTimeoutMs: 2000,
    });
    buses.push(bus);
    return bus;
  }

  const p = names.subjectPrefix;
  const s = names.streams;
  const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

  it("each service does its part of the traffic with its own credentials", async () => {
    const ds = await as("delivery");
    const qs = await as("queue");
    const gw = await as("federation-gateway");
    const auth = await as("auth");
    // The QS starts first here: the DS's fan-out must wait for it in the work queue anyway.
    for (const bus of [qs, ds, gw]) {
      await bus.ensureStream(fanOutStream(s.fanOut, `${p}phoenix.fanout`));
      await bus.ensureStream(queueDeletedStream(s.queueDeleted, `${p}phoenix.queue_deleted`));
    }
    for (const bus of [qs, gw]) {
      await bus.ensureStream(federationOutboundStream(s.federation, `${p}phoenix.federation.outbound.>`));
    }
    await ds.publish(`${p}phoenix.fanout`, bytes("from the DS"), { id: "f1" });
    await gw.publish(`${p}phoenix.fanout`, bytes("from a peer"), { id: "f2" });
    await qs.publish(`${p}phoenix.queue_deleted`, bytes("deleted"), { id: "d1" });
    await qs.publish(`${p}phoenix.federation.outbound.beta_test`, bytes("outbound"), { id: "o1" });

    const fanOuts: BusMessage[] = [];
    await qs.consume({ stream: s.fanOut, durable: "queue-fanout" }, async (m) => {
      fanOuts.push(m);
    });
    const deleted: BusMessage[] = [];
    await ds.consume({ stream: s.queueDeleted, durable: "delivery-queue-deleted" }, async (m) => {
      deleted.push(m);
    });
    // As in the gateway: the peer's lane exists before the scout acks the message.
    const lane: BusMessage[] = [];
    await gw.consume(
      {
        stream: s.federation,
        durable: "fedgw-out-beta_test",
        filterSubject: `${p}phoenix.federation.outbound.beta_test`,
      },
      async (m) => {
        lane.push(m);
      },
    );
    const scouted: BusMessage[] = [];
    await gw.consume({ stream: s.federation, durable: OUTBOUND_SCOUT_DURABLE }, async (m) => {
      scouted.push(m);
    });
    await expect.poll(() => fanOuts.map((m) => m.id).sort(), { timeout: 10_000 }).toEqual(["f1", "f2"]);
    await expect.poll(() => deleted.map((m) => m.id), { timeout: 10_000 }).toEqual(["d1"]);
    await expect.poll(() => scouted.map((m) => m.id), { timeout: 10_000 }).toEqual(["o1"]);
    await expect.poll(() => lane.map((m) => m.id), { timeout: 10_000 }).toEqual(["o1"]);

    // Core notifications: queue activity between QS replicas, connection queues between AS ones.
    const qsWakeups: string[] = [];
    await qs.listen(`${p}phoenix.queue_activity.*`, (subject) => qsWakeups.push(subject));
    await qs.notify(`${p}phoenix.queue_activity.abcd`, bytes("1"));
    const asWakeups: string[] = [];
    await auth.listen("phoenix.connection_queue_activity.*", (subject) => asWakeups.push(subject));
    await auth.notify("phoenix.connection_queue_activity.ef01", bytes("1"));
    await expect.poll(() => qsWakeups, { timeout: 5000 }).toEqual([`${p}phoenix.queue_activity.abcd`]);
    await expect.poll(() => asWakeups, { timeout: 5000 }).toEqual(["phoenix.connection_queue_activity.ef01"]);

    // A QS taking over the fan-out consumer recreates its durable; the DS may not.
    await expect(ds.resetDurable?.(s.fanOut, "queue-fanout")).rejects.toThrow();
    await expect(qs.resetDurable?.(s.fanOut, "queue-fanout")).resolves.toBeUndefined();
  });

  it("refuses a service publishing to, or consuming, another service's subjects", async () => {
    const ds = await as("delivery");
    const gw = await as("federation-gateway");
    const auth = await as("auth");
    // The DS forging outbound federation traffic, the AS injecting a fan-out.
    await expect(
      ds.publish(`${p}phoenix.federation.outbound.beta_test`, bytes("forged"), { id: "x1" }),
    ).rejects.toThrow();
    await expect(auth.publish(`${p}phoenix.fanout`, bytes("forged"), { id: "x2" })).rejects.toThrow();
    // The gateway taking the QS's fan-outs, the DS reading outbound federation traffic.
    await expect(gw.consume({ stream: s.fanOut, durable: "queue-fanout" }, async () => {})).rejects.toThrow();
    await expect(
      ds.consume({ stream: s.federation, durable: OUTBOUND_SCOUT_DURABLE }, async () => {}),
    ).rejects.toThrow();
  });

  it("refuses a wrong password", async () => {
    await expect(as("delivery", "not-the-password")).rejects.toThrow();
  });
});
