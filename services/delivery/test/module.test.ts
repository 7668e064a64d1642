// The DS embedded as the all-in-one homeserver embeds it (startModules on PGlite and the embedded
// bus): `embed` gives it the homeserver's domain and trusts the in-process gateways on loopback.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { delivery } from "@phoenix/proto";
import { type Bus, createEmbeddedBus } from "@phoenix/runtime/bus";
import { ModuleStartError, type RunningModules, startModules } from "@phoenix/runtime/module";
import { createTestPglite, type TestDatabase } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliveryModule } from "../src/module.js";
import { DELIVERY_MIGRATIONS } from "../src/store/migrations.js";
import { call } from "./support/harness.js";

const DOMAIN = "embedded.example";
const silent = new Writable({ write: (_chunk, _encoding, done) => done() });

let dataDir: string;
let db: TestDatabase;
let bus: Bus;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "ds-module-"));
  db = await createTestPglite({ migrationsFolder: DELIVERY_MIGRATIONS });
  bus = await createEmbeddedBus({ db: db.db });
});
afterAll(async () => {
  await bus?.close();
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

function embed(env: Record<string, string>): Promise<RunningModules> {
  return startModules([deliveryModule], {
    env,
    settings: { domain: DOMAIN, dataDir, logLevel: "silent", shutdownGraceMs: 2000 },
    resources: () => ({ database: db, bus }),
    logDestination: silent,
  });
}

function forwardedFor(address: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("x-forwarded-for", address);
  return metadata;
}

describe("the DS as an embedded service module", () => {
  it("serves groups of the homeserver's domain and limits the callers its loopback gateways name", async () => {
    const running = await embed({
      DS_REPLAY_MARKER_KEY: randomBytes(32).toString("hex"),
      DS_CALLER_RATE_GROUP_ID_PER_MINUTE: "1",
    });
    const address = running.addresses.delivery;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    const client = new delivery.DeliveryServiceClient(address ?? "", grpc.credentials.createInsecure());
    try {
      const ask = (caller: string) =>
        call<delivery.RequestGroupIdResponse>((done) =>
          client.requestGroupId({}, forwardedFor(caller), done),
        );
      const first = await ask("198.51.100.1");
      expect(first.groupId?.domain).toBe(DOMAIN);
      // Another caller named by the trusted loopback peer has a bucket of its own.
      expect((await ask("198.51.100.2")).groupId?.domain).toBe(DOMAIN);
      const again = await ask("198.51.100.1").then(
        () => undefined,
        (error: grpc.ServiceError) => error.code,
      );
      expect(again).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      client.close();
      await running.stop();
    }
  });

  it("does not start without DS_REPLAY_MARKER_KEY: the secret is the embedder's to give", async () => {
    const failed = await embed({}).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(ModuleStartError);
    expect((failed as Error).message).toContain("DS_REPLAY_MARKER_KEY");
  });
});
