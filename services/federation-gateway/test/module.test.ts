import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata, status } from "@grpc/grpc-js";
import { queue } from "@phoenix/proto";
import { createEmbeddedBus } from "@phoenix/runtime/bus";
import { PassthroughStatusError, UnavailableError } from "@phoenix/runtime/errors";
import { FederationRouter } from "@phoenix/runtime/federation";
import type { CallContext } from "@phoenix/runtime/grpc";
import { createLogger } from "@phoenix/runtime/log";
import { startModules } from "@phoenix/runtime/module";
import { createTestPglite } from "@phoenix/runtime/testing";
import { describe, expect, it } from "vitest";
import { federationGatewayModule, GATEWAY_MIGRATIONS } from "../src/index.js";

/** The call a local service's handler would forward from. */
function localCall(): CallContext {
  return {
    service: "phoenix.queue.v1.QueueService",
    method: "FetchAddPackages",
    metadata: new Metadata(),
    peer: "ipv4:127.0.0.1:1",
    requestId: "module-test",
    log: createLogger({ service: "module-test", level: "silent" }),
    signal: new AbortController().signal,
    deadline: undefined,
  };
}

// The all-in-one homeserver and the test harness embed the gateway with startModules: the
// domain and the AS/DS/QS addresses come typed from the embedder, and the services' shared
// federation router must reach the gateway's internal listener without further wiring.
describe("federationGatewayModule embedded by startModules", () => {
  it("takes the embedder's domain and addresses and connects the shared router to its internal listener", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "fedgw-module-"));
    const db = await createTestPglite({ migrationsFolder: GATEWAY_MIGRATIONS });
    const bus = await createEmbeddedBus({ db: db.db });
    const router = new FederationRouter({ localDomain: "a.test" });
    const method = queue.QueueServiceService.fetchAddPackages;
    const request = { domain: "b.test", friendshipToken: new Uint8Array(32) };
    try {
      const before = await router.forward(method, "b.test", request, localCall()).catch((e: unknown) => e);
      expect(before).toBeInstanceOf(UnavailableError);

      const running = await startModules([federationGatewayModule], {
        env: { FEDERATION_KEY_ENCRYPTION_KEY: randomBytes(32).toString("hex") },
        settings: {
          domain: "a.test",
          dataDir,
          logLevel: "silent",
          shutdownGraceMs: 1000,
          addresses: { auth: "127.0.0.1:7001", delivery: "127.0.0.1:7002", queue: "127.0.0.1:7003" },
        },
        resources: () => ({ database: db, bus, router }),
      });
      try {
        const config = running.modules["federation-gateway"]?.process.config;
        expect(config).toMatchObject({
          SERVICE_NAME: "federation-gateway",
          FEDERATION_DOMAIN: "a.test",
          FEDERATION_AS_ADDRESS: "127.0.0.1:7001",
          FEDERATION_DS_ADDRESS: "127.0.0.1:7002",
          FEDERATION_QS_ADDRESS: "127.0.0.1:7003",
          FEDERATION_INTERNAL_HOST: "127.0.0.1",
        });
        expect(running.addresses.federationInternal).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
        expect(running.addresses["federation-gateway"]).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);

        // Now the gateway answers: its default allowlist federates with nobody.
        const after = await router.forward(method, "b.test", request, localCall()).catch((e: unknown) => e);
        expect(after).toBeInstanceOf(PassthroughStatusError);
        expect((after as PassthroughStatusError).code).toBe(status.PERMISSION_DENIED);
        expect((after as Error).message).toBe(
          "domain b.test is refused by the federation policy: not on the allowlist",
        );
      } finally {
        await running.stop();
      }
    } finally {
      router.close();
      await bus.close();
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
