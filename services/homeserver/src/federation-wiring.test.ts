// Two all-in-one homeservers on one Postgres server and one NATS, federating on loopback through
// a static peer map: a request alpha's AS, DS and QS receive about beta.example travels through
// alpha's federation gateway to beta's and is answered by beta's services. This proves the
// wiring (one router shared by AS, DS and QS, connected once the gateway listens); the
// multi-domain client scenarios live in the test harness.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { auth, delivery, queue } from "@phoenix/proto";
import { busTopology } from "@phoenix/runtime/bus";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { callFailure, freePorts } from "@phoenix/runtime/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningHomeserver, startHomeserver } from "./homeserver.js";

const ALPHA = "alpha.example";
const BETA = "beta.example";

function required(name: "DATABASE_URL" | "NATS_URL"): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through vitest`);
  return value;
}

describe("two federating all-in-one homeservers", () => {
  const run = randomBytes(4).toString("hex");
  const prefixOf = (domain: string) => `fw_${run}_${domain.split(".")[0]}_`;
  const namespaceOf = (domain: string) => `fw${run}${domain.split(".")[0]}`;
  const servers = new Map<string, RunningHomeserver>();
  const closers: (() => unknown)[] = [];
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "federation-wiring-"));
    // The static peer map needs the gateways' ports up front.
    const [alphaPort, betaPort] = await freePorts(2);
    const ports = { [ALPHA]: alphaPort, [BETA]: betaPort };
    for (const [domain, peer] of [
      [ALPHA, BETA],
      [BETA, ALPHA],
    ] as const) {
      const server = await startHomeserver({
        env: {
          HOMESERVER_DOMAIN: domain,
          DATA_DIR: join(dataDir, domain),
          DATABASE_URL: required("DATABASE_URL"),
          NATS_URL: required("NATS_URL"),
          HOMESERVER_DATABASE_PREFIX: prefixOf(domain),
          HOMESERVER_BUS_NAMESPACE: namespaceOf(domain),
          HTTP_PORT: "0",
          GRPC_PORT: "0",
          METRICS_PORT: "0",
          LOG_LEVEL: "silent",
          SERVICES_LOG_LEVEL: "silent",
          FEDERATION_PORT: String(ports[domain]),
          FEDERATION_PEERS: `${peer}=127.0.0.1:${ports[peer]}`,
          FEDERATION_STATIC_ONLY: "true",
          FEDERATION_ALLOWED_DOMAINS: peer,
        },
      });
      servers.set(domain, server);
    }
  }, 120_000);

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    for (const server of servers.values()) await server.stop();
    const admin = new pg.Client({ connectionString: required("DATABASE_URL") });
    await admin.connect();
    try {
      const created = await admin.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
        [`fw_${run}_`],
      );
      for (const { datname } of created.rows)
        await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    const nc = await connect({ servers: required("NATS_URL") });
    const jsm = await jetstreamManager(nc);
    for (const domain of [ALPHA, BETA]) {
      for (const stream of Object.values(busTopology(namespaceOf(domain)).streams)) {
        await jsm.streams.delete(stream).catch(() => false);
      }
    }
    await nc.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  function clientsOf(domain: string) {
    const server = servers.get(domain);
    if (server === undefined) throw new Error(`${domain} did not start`);
    const channels = [server.addresses.auth, server.addresses.delivery, server.addresses.queue].map((a) =>
      createChannel(a),
    );
    for (const channel of channels) closers.push(() => channel.close());
    const [as, ds, qs] = channels;
    return {
      as: createServiceClient(auth.AuthServiceService, as as NonNullable<typeof as>, {
        defaultDeadlineMs: 20_000,
      }),
      ds: createServiceClient(delivery.DeliveryServiceService, ds as NonNullable<typeof ds>, {
        defaultDeadlineMs: 20_000,
      }),
      qs: createServiceClient(queue.QueueServiceService, qs as NonNullable<typeof qs>, {
        defaultDeadlineMs: 20_000,
      }),
    };
  }

  it("alpha's AS answers beta's AS credentials, fetched from beta through both gateways", async () => {
    const alpha = clientsOf(ALPHA);
    const beta = clientsOf(BETA);
    const own = await beta.as.getAsCredentials({ domain: "" });
    expect(own.domain).toBe(BETA);
    const remote = await alpha.as.getAsCredentials({ domain: BETA });
    expect(remote.domain).toBe(BETA);
    const encode = (r: auth.GetAsCredentialsResponse) => auth.GetAsCredentialsResponse.encode(r).finish();
    expect(encode(remote)).toEqual(encode(own));
    // And the other way round: beta's AS knows alpha's.
    expect((await beta.as.getAsCredentials({ domain: ALPHA })).domain).toBe(ALPHA);
  });

  it("alpha's DS and QS forward to beta's, whose refusals come back unchanged", async () => {
    const alpha = clientsOf(ALPHA);
    const group = await callFailure(
      alpha.ds.connectionGroupInfo({
        groupId: { uuid: new Uint8Array(randomBytes(16)), domain: BETA },
        groupStateEarKey: new Uint8Array(32),
      }),
    );
    expect({ code: group.code, message: group.statusMessage }).toEqual({
      code: status.NOT_FOUND,
      message: "no such group",
    });
    const packages = await callFailure(
      alpha.qs.fetchAddPackages({ friendshipToken: new Uint8Array(randomBytes(32)), domain: BETA }),
    );
    expect(packages.code).toBe(status.NOT_FOUND);
  });

  it("refuses a domain that is not a peer with the gateway's PERMISSION_DENIED", async () => {
    const alpha = clientsOf(ALPHA);
    const error = await callFailure(alpha.as.getAsCredentials({ domain: "gamma.example" }));
    expect(error.code).toBe(status.PERMISSION_DENIED);
    expect(error.statusMessage).toContain("gamma.example");
  });
});
