import { authModule } from "@phoenix/auth";
import { deliveryModule } from "@phoenix/delivery";
import { edgeGatewayModule } from "@phoenix/edge-gateway";
import { federationGatewayModule } from "@phoenix/federation-gateway";
import { queueModule } from "@phoenix/queue";
import { busTopology } from "@phoenix/runtime/bus";
import { loadConfig } from "@phoenix/runtime/config";
import { type AnyServiceModule, type EmbedSettings, moduleEnv } from "@phoenix/runtime/module";
import { testConfig } from "@phoenix/runtime/testing";
import { describe, expect, it } from "vitest";
import { servicesWiring } from "../src/index.js";

const KEY = "ab".repeat(32);

/** Every module of a deployment, with the secrets it requires. */
const MODULES: readonly { module: AnyServiceModule; required: Record<string, unknown> }[] = [
  { module: authModule, required: { AS_KEY_ENCRYPTION_KEY: KEY } },
  { module: deliveryModule, required: { DS_REPLAY_MARKER_KEY: KEY } },
  { module: queueModule, required: {} },
  { module: federationGatewayModule, required: { FEDERATION_KEY_ENCRYPTION_KEY: KEY } },
  { module: edgeGatewayModule, required: {} },
];

const settings: EmbedSettings = {
  domain: "wiring.example",
  dataDir: "/srv/phoenix",
  logLevel: "warn",
  shutdownGraceMs: 1500,
  addresses: {
    auth: "127.0.0.1:7001",
    delivery: "127.0.0.1:7002",
    queue: "127.0.0.1:7003",
    federationInternal: "127.0.0.1:7005",
  },
  bus: busTopology("wire1"),
};

describe("moduleEnv", () => {
  for (const { module, required } of MODULES) {
    it(`writes every config value of ${module.name} as env that its schema parses back`, () => {
      // Each schema's defaults, the embedded settings and the secrets: every field's type.
      const values = testConfig(module.config, {
        ...required,
        ...module.embed?.(settings),
        GRPC_PORT: 7100,
        SHUTDOWN_GRACE_MS: 1500,
        LOG_LEVEL: "warn",
      });
      const env = moduleEnv(module, values);
      expect(loadConfig(module.config, env)).toEqual(values);
    });
  }
});

describe("servicesWiring", () => {
  const wiring = servicesWiring({
    domain: "wiring.example",
    databaseUrl: "postgres://postgres@127.0.0.1:5432/postgres",
    natsUrl: "nats://127.0.0.1:4222",
    namespace: "wire1",
    ports: {
      auth: 7001,
      delivery: 7002,
      queue: 7003,
      federation: 7004,
      federationInternal: 7005,
      http: 7080,
    },
    logLevel: "warn",
    env: { EDGE_RATE_LIMIT_BURST: "100000" },
  });

  it("gives each process the variables docs/deployment.md names, pointing at the others' ports", () => {
    expect(wiring.env.auth).toMatchObject({
      SERVICE_NAME: "auth",
      AS_DOMAIN: "wiring.example",
      AS_TRUSTED_PROXIES: "127.0.0.1,::1",
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/wire1_auth",
      NATS_URL: "nats://127.0.0.1:4222",
      GRPC_PORT: "7001",
      FEDERATION_PROXY_ADDRESS: "127.0.0.1:7005",
    });
    expect(wiring.env.queue).toMatchObject({ QS_DOMAIN: "wiring.example", GRPC_PORT: "7003" });
    expect(wiring.env["federation-gateway"]).toMatchObject({
      FEDERATION_DOMAIN: "wiring.example",
      FEDERATION_INSECURE_PLAINTEXT: "true",
      FEDERATION_INTERNAL_HOST: "127.0.0.1",
      FEDERATION_INTERNAL_PORT: "7005",
      FEDERATION_AS_ADDRESS: "127.0.0.1:7001",
      FEDERATION_DS_ADDRESS: "127.0.0.1:7002",
      FEDERATION_QS_ADDRESS: "127.0.0.1:7003",
      GRPC_PORT: "7004",
    });
    expect(wiring.env["edge-gateway"]).toMatchObject({
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "7080",
      AUTH_SERVICE_ADDRESS: "127.0.0.1:7001",
      DELIVERY_SERVICE_ADDRESS: "127.0.0.1:7002",
      QUEUE_SERVICE_ADDRESS: "127.0.0.1:7003",
      EDGE_RATE_LIMIT_BURST: "100000",
    });
    expect(wiring.url).toBe("http://127.0.0.1:7080");
  });

  it("puts every process on the deployment's namespaced streams and subjects", () => {
    const delivery = loadConfig(deliveryModule.config, wiring.env.delivery);
    const queue = loadConfig(queueModule.config, wiring.env.queue);
    const federation = loadConfig(federationGatewayModule.config, wiring.env["federation-gateway"]);
    expect(wiring.streams).toEqual([
      "PHOENIX_FANOUT_wire1",
      "PHOENIX_QUEUE_DELETED_wire1",
      "PHOENIX_FEDERATION_OUTBOUND_wire1",
    ]);
    expect(delivery).toMatchObject({
      DS_FANOUT_SUBJECT: "wire1.phoenix.fanout",
      DS_FANOUT_STREAM: "PHOENIX_FANOUT_wire1",
      DS_QUEUE_DELETED_SUBJECT: "wire1.phoenix.queue_deleted",
      DS_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_wire1",
    });
    expect(queue).toMatchObject({
      QS_SUBJECT_PREFIX: "wire1.",
      QS_FANOUT_STREAM: "PHOENIX_FANOUT_wire1",
      QS_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_wire1",
      QS_FEDERATION_STREAM: "PHOENIX_FEDERATION_OUTBOUND_wire1",
    });
    expect(federation).toMatchObject({
      FEDERATION_SUBJECT_PREFIX: "wire1.",
      FEDERATION_FANOUT_STREAM: "PHOENIX_FANOUT_wire1",
      FEDERATION_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_wire1",
      FEDERATION_OUTBOUND_STREAM: "PHOENIX_FEDERATION_OUTBOUND_wire1",
    });
  });
});
