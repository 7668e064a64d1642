import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { toHex } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { type Bus, createEmbeddedBus } from "@phoenix/runtime/bus";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { startModules } from "@phoenix/runtime/module";
import { createTestPglite, eventually, type TestDatabase } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queueModule } from "../src/module.js";
import { QUEUE_MIGRATIONS } from "../src/setup.js";
import { publishFanOut } from "./support/fan-out.js";
import type { Harness } from "./support/harness.js";
import { TestClient } from "./support/test-client.js";

let dataDir: string;
let db: TestDatabase;
let bus: Bus;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "qs-setup-"));
  db = await createTestPglite({ migrationsFolder: QUEUE_MIGRATIONS });
  bus = await createEmbeddedBus({ db: db.db });
});
afterAll(async () => {
  await bus?.close();
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const silent = new Writable({ write: (_chunk, _encoding, done) => done() });

/** The QS embedded as the all-in-one homeserver embeds it: its domain and data dir from the settings. */
async function run() {
  const running = await startModules([queueModule], {
    env: {},
    settings: { domain: "embedded.example", dataDir, logLevel: "silent", shutdownGraceMs: 2000 },
    resources: () => ({ database: db, bus }),
    logDestination: silent,
  });
  const qs = running.modules.queue;
  if (qs === undefined) throw new Error("the queue module did not start");
  return { grpcPort: qs.grpcPort, metricsPort: qs.process.metricsServer.port, stop: () => running.stop() };
}

describe("the QS process wiring on the embedded bus and PGlite (all-in-one mode)", () => {
  it("creates its storage key once under DATA_DIR, keeps its keys across restarts and delivers fan-outs", async () => {
    const first = await run();
    const channel = createChannel(`127.0.0.1:${first.grpcPort}`);
    const client = createServiceClient(queue.QueueServiceService, channel);
    const keys = await client.getQueueConfigEncryptionKey({});
    const keyFile = join(dataDir, "queue", "storage.key");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const alice = await TestClient.register(() => client, keys, "embedded.example");
    const fake = { bus, prefix: "" } as unknown as Harness;
    const fanOut = await publishFanOut(fake, { recipients: [alice.qsReference()] });
    const got = await eventually(async () => {
      await alice.drain(BigInt(alice.receiver?.nextSequenceNumber ?? 0));
      return alice.received.length > 0 ? alice.received.map(toHex) : undefined;
    });
    expect(got).toEqual([toHex(fanOut.payload)]);
    const metrics = await (await fetch(`http://127.0.0.1:${first.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^qs_fanout_deliveries_total\{service="queue"\} 1$/m);
    channel.close();
    await first.stop();

    const second = await run();
    const again = createChannel(`127.0.0.1:${second.grpcPort}`);
    const after = await createServiceClient(queue.QueueServiceService, again).getQueueConfigEncryptionKey({});
    expect(after.keys.map((k) => toHex(k.publicKey))).toEqual(keys.keys.map((k) => toHex(k.publicKey)));
    again.close();
    await second.stop();
  });
});
