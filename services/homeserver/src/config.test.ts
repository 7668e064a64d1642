import { loadConfig } from "@phoenix/runtime/config";
import { describe, expect, it } from "vitest";
import { CommandLineError, homeserverConfigSchema, parseCommandLine } from "./config.js";
import { busOverrides } from "./homeserver.js";

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
  });

  it("refuses unknown flags, flags without a value and bad values", () => {
    expect(() => parseCommandLine(["--nope"])).toThrow(CommandLineError);
    expect(() => parseCommandLine(["--port"])).toThrow(CommandLineError);
    expect(() =>
      loadConfig(homeserverConfigSchema, { HTTP_PORT: "70000", HOMESERVER_DOMAIN: "UPPER" }),
    ).toThrow(/HOMESERVER_DOMAIN.*HTTP_PORT|HTTP_PORT.*HOMESERVER_DOMAIN/s);
  });

  it("keeps namespaced homeservers apart on one bus and leaves the defaults alone without a namespace", () => {
    // Without a namespace the QS's own QS_*_STREAM variables decide.
    expect(busOverrides(undefined)).toEqual({
      subjectPrefix: "",
      streams: {},
      deliveryEnv: {},
      federationEnv: {},
    });
    const names = busOverrides("t1");
    expect(names.deliveryEnv.DS_FANOUT_SUBJECT).toBe("t1.phoenix.fanout");
    expect(names.federationEnv.FEDERATION_SUBJECT_PREFIX).toBe("t1.");
    // The DS publishes into, and the QS and federation gateway read from, the same streams.
    expect(names.streams.fanOut).toBe(names.deliveryEnv.DS_FANOUT_STREAM);
    expect(names.federationEnv.FEDERATION_FANOUT_STREAM).toBe(names.deliveryEnv.DS_FANOUT_STREAM);
    expect(names.streams.queueDeleted).toBe(names.deliveryEnv.DS_QUEUE_DELETED_STREAM);
    expect(names.federationEnv.FEDERATION_OUTBOUND_STREAM).toBe(names.streams.federation);
    // The names namespaced homeservers have always used (their streams outlive a restart).
    expect(names).toEqual({
      subjectPrefix: "t1.",
      streams: {
        fanOut: "PHOENIX_FANOUT_t1",
        queueDeleted: "PHOENIX_QUEUE_DELETED_t1",
        federation: "PHOENIX_FEDERATION_OUTBOUND_t1",
      },
      deliveryEnv: {
        DS_FANOUT_SUBJECT: "t1.phoenix.fanout",
        DS_FANOUT_STREAM: "PHOENIX_FANOUT_t1",
        DS_QUEUE_DELETED_SUBJECT: "t1.phoenix.queue_deleted",
        DS_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_t1",
      },
      federationEnv: {
        FEDERATION_SUBJECT_PREFIX: "t1.",
        FEDERATION_FANOUT_STREAM: "PHOENIX_FANOUT_t1",
        FEDERATION_QUEUE_DELETED_STREAM: "PHOENIX_QUEUE_DELETED_t1",
        FEDERATION_OUTBOUND_STREAM: "PHOENIX_FEDERATION_OUTBOUND_t1",
      },
    });
  });
});
