// The all-in-one never falls into plaintext federation by itself: without TLS files it federates
// in plaintext only on a loopback listener or with the explicit FEDERATION_INSECURE_PLAINTEXT
// opt-in (the gateway's rule: services/federation-gateway/test/transport.test.ts).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHomeserver } from "../src/index.js";

describe("federation transport of the all-in-one homeserver", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "homeserver-federation-transport-"));
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const baseEnv = (name: string): Record<string, string> => ({
    HOMESERVER_DOMAIN: "alpha.test",
    DATA_DIR: join(dataDir, name),
    HTTP_PORT: "0",
    GRPC_PORT: "0",
    METRICS_PORT: "0",
    FEDERATION_PORT: "0",
    LOG_LEVEL: "info",
    SERVICES_LOG_LEVEL: "info",
  });

  it("refuses to start with a federation listener other hosts can reach and no TLS", async () => {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: nothing is ever bound there.
    const started = startHomeserver({
      env: { ...baseEnv("exposed"), FEDERATION_HOST: "192.0.2.1" },
      logDestination: { write: () => true },
    });
    await expect(started).rejects.toThrow(
      /192\.0\.2\.1.*FEDERATION_TLS_CERT_FILE and FEDERATION_TLS_KEY_FILE.*FEDERATION_INSECURE_PLAINTEXT=true/s,
    );
  }, 120_000);
});
