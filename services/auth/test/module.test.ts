import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { AsCredential } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { createEmbeddedBus } from "@phoenix/runtime/bus";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { startModules, withOverrides } from "@phoenix/runtime/module";
import { createTestDatabase } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { authMigrationsFolder, authModule } from "../src/index.js";
import { queryNumber } from "./support/harness.js";

function logSink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

// The all-in-one homeserver and the test harness embed the AS with startModules: its domain comes
// typed from the embedder (not from AS_DOMAIN in env), the in-process gateways on loopback are its
// trusted proxies, and its secret is handed in as a typed override.
describe("authModule embedded by startModules", () => {
  it("serves the embedder's domain, trusts loopback proxies and publishes its address", async () => {
    const db = await createTestDatabase({ migrationsFolder: authMigrationsFolder });
    const bus = await createEmbeddedBus({ db: db.db });
    try {
      const running = await startModules(
        [withOverrides(authModule, { AS_KEY_ENCRYPTION_KEY: randomBytes(32).toString("hex") })],
        {
          env: { AS_DOMAIN: "env.example" },
          settings: {
            domain: "embed.example",
            dataDir: "/nonexistent",
            logLevel: "silent",
            shutdownGraceMs: 1000,
          },
          resources: () => ({ database: db, bus }),
          logDestination: logSink(),
        },
      );
      try {
        expect(running.modules.auth?.process.config).toMatchObject({
          SERVICE_NAME: "auth",
          AS_DOMAIN: "embed.example",
          AS_TRUSTED_PROXIES: ["127.0.0.1", "::1"],
        });
        const address = running.addresses.auth ?? "";
        expect(address).toBe(`127.0.0.1:${running.modules.auth?.grpcPort}`);
        const channel = createChannel(address);
        try {
          const as = createServiceClient(auth.AuthServiceService, channel, { defaultDeadlineMs: 10_000 });
          const answer = await as.getAsCredentials({ domain: "" });
          expect(answer.domain).toBe("embed.example");
          const root = AsCredential.decode(answer.asCredentials[0] ?? new Uint8Array());
          expect(root.domain).toBe("embed.example");
        } finally {
          channel.close();
        }
      } finally {
        await running.stop();
      }
      // The handed-in database stays the embedder's: still open after the module stopped.
      expect(await queryNumber(db.db, sql`SELECT count(*) FROM clients`)).toBe(0);
    } finally {
      await bus.close();
      await db.close();
    }
  });
});
