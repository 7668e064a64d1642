import { deliveryModule } from "@phoenix/delivery";
import { federationGatewayModule } from "@phoenix/federation-gateway";
import { queueModule } from "@phoenix/queue";
import { type BusTopology, busTopology } from "@phoenix/runtime/bus";
import { loadConfig } from "@phoenix/runtime/config";
import { describe, expect, it } from "vitest";
import { CommandLineError, homeserverConfigSchema, parseCommandLine } from "./config.js";

describe("homeserver configuration", () => {
  it("has first-run defaults: localhost, 127.0.0.1:8080, ./.data, PGlite and the embedded bus", () => {
    const config = loadConfig(homeserverConfigSchema, {});
    expect(config).toMatchObject({
      HOMESERVER_DOMAIN: "localhost",
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: 8080,
      DATA_DIR: "./.data",
      HOMESERVER_DATABASE_PREFIX: "phoenix_",
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.NATS_URL).toBeUndefined();
  });

  it("maps flags to their variables, a flag winning over the environment", () => {
    const { env, help } = parseCommandLine([
      "--domain",
      "chat.example",
      "--port",
      "9000",
      "--data-dir",
      "/srv/x",
    ]);
    expect(help).toBe(false);
    const config = loadConfig(homeserverConfigSchema, { HOMESERVER_DOMAIN: "other.example", ...env });
    expect(config).toMatchObject({ HOMESERVER_DOMAIN: "chat.example", HTTP_PORT: 9000, DATA_DIR: "/srv/x" });
    expect(parseCommandLine(["-h"]).help).toBe(true);
    // The edge gateway's TLS files are its own variables, passed through.
    expect(parseCommandLine(["--tls-cert", "/etc/c.pem", "--tls-key", "/etc/k.pem"]).env).toEqual({
      EDGE_TLS_CERT_FILE: "/etc/c.pem",
      EDGE_TLS_KEY_FILE: "/etc/k.pem",
    });
  });

  it("refuses a homeserver domain that is not fully qualified, except localhost", () => {
    expect(() => loadConfig(homeserverConfigSchema, { HOMESERVER_DOMAIN: "chat" })).toThrow(
      /HOMESERVER_DOMAIN: "chat" is not a fully qualified domain name/,
    );
    expect(loadConfig(homeserverConfigSchema, { HOMESERVER_DOMAIN: "localhost" }).HOMESERVER_DOMAIN).toBe(
      "localhost",
    );
  });

  it("refuses unknown flags, flags without a value and bad values", () => {
    expect(() => parseCommandLine(["--nope"])).toThrow(CommandLineError);
    expect(() => parseCommandLine(["--port"])).toThrow(CommandLineError);
    expect(() =>
      loadConfig(homeserverConfigSchema, { HTTP_PORT: "70000", HOMESERVER_DOMAIN: "UPPER" }),
    ).toThrow(/HOMESERVER_DOMAIN.*HTTP_PORT|HTTP_PORT.*HOMESERVER_DOMAIN/s);
  });

  it("keeps namespaced homeservers apart on one bus and leaves the defaults alone without a namespace", () => {
    const settings = {
      domain: "t.example",
      dataDir: "/data",
      logLevel: "warn",
      shutdownGraceMs: 1000,
    } as const;
    const embedded = (bus?: BusTopology) => {
      const withBus = { ...settings, addresses: {}, ...(bus ? { bus } : {}) };
      return {
        delivery: deliveryModule.embed?.(withBus) ?? {},
        queue: queueModule.embed?.(withBus) ?? {},
        federation: federationGatewayModule.embed?.(withBus) ?? {},
      };
    };
    // Without a namespace the modules' own variables (QS_FANOUT_STREAM, …) decide.
    const plain = embedded();
    expect(plain.delivery.DS_FANOUT_STREAM).toBeUndefined();
    expect(plain.queue.QS_SUBJECT_PREFIX).toBeUndefined();
    expect(plain.federation.FEDERATION_OUTBOUND_STREAM).toBeUndefined();
    // The names namespaced homeservers have always used (their streams outlive a restart): the
    // DS publishes into, and the QS and federation gateway read from, the same streams.
    const names = embedded(busTopology("t1"));
    expect(names.delivery).toMatchObject({
      DS_FANOUT_SUBJECT: "t1.phoenix.fanout",
      DS_FANOUT_STREAM: "PHOENIX_FANOUT_t1",
      DS_QUEUE_DELETED_SUBJECT: "t1.phoenix.queue_deleted",
      DS_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_t1",
    });
    expect(names.queue).toMatchObject({
      QS_SUBJECT_PREFIX: "t1.",
      QS_FANOUT_STREAM: "PHOENIX_FANOUT_t1",
      QS_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_t1",
      QS_FEDERATION_STREAM: "PHOENIX_FEDERATION_OUTBOUND_t1",
    });
    expect(names.federation).toMatchObject({
      FEDERATION_SUBJECT_PREFIX: "t1.",
      FEDERATION_FANOUT_STREAM: "PHOENIX_FANOUT_t1",
      FEDERATION_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_t1",
      FEDERATION_OUTBOUND_STREAM: "PHOENIX_FEDERATION_OUTBOUND_t1",
    });
  });
});
