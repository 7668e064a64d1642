// The same homeserver process against the Postgres server of DATABASE_URL (one database per
// service, created at start) and NATS JetStream, under a unique database prefix and bus namespace.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { HomeserverProcess } from "@phoenix/test-harness";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectServing, fetchAsCredentials } from "./support/scenario.js";

const serverUrl = (): string => {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is not set: run the tests through vitest");
  return url;
};
const natsUrl = (): string => {
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set: run the tests through vitest");
  return url;
};

async function adminQuery<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function withStreams<T>(
  fn: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers: natsUrl() });
  try {
    return await fn(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

describe("all-in-one homeserver on Postgres (child process)", () => {
  const suffix = randomBytes(5).toString("hex");
  const prefix = `hs_${suffix}_`;
  const namespace = `hs${suffix}`;
  const streams = ["PHOENIX_FANOUT", "PHOENIX_QUEUE_DELETED", "PHOENIX_FEDERATION_OUTBOUND"].map(
    (name) => `${name}_${namespace}`,
  );
  let dataDir: string;
  const processes: HomeserverProcess[] = [];
  const start = (env: Record<string, string> = { NATS_URL: natsUrl() }) => {
    const p = HomeserverProcess.start(["--data-dir", dataDir, "--port", "0", "--domain", "beta.test"], {
      DATABASE_URL: serverUrl(),
      HOMESERVER_DATABASE_PREFIX: prefix,
      HOMESERVER_BUS_NAMESPACE: namespace,
      ...env,
    });
    processes.push(p);
    return p;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "homeserver-pg-test-"));
  });
  afterAll(async () => {
    for (const p of processes) await p.stop();
    const created = await adminQuery<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
      [prefix],
    );
    for (const { datname } of created) await adminQuery(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    await withStreams(async (jsm) => {
      for (const name of streams) await jsm.streams.delete(name).catch(() => false);
    });
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("creates its databases and streams, serves AS, DS and QS, stops on SIGTERM and restarts with the same keys", async () => {
    const first = start();
    const url = await first.ready();
    const before = await expectServing(url, "beta.test");

    const databases = await adminQuery<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
      [prefix],
    );
    // No bus database: the bus is NATS.
    expect(databases.map((d) => d.datname)).toEqual(
      ["auth", "delivery", "federation", "queue"].map((name) => `${prefix}${name}`),
    );
    const fanOut = await withStreams((jsm) => jsm.streams.info(`PHOENIX_FANOUT_${namespace}`));
    expect(fanOut.config.subjects).toEqual([`${namespace}.phoenix.fanout`]);

    first.signal("SIGTERM");
    expect(await first.exited).toEqual({ code: 0, signal: null });

    // The databases exist now: the restart opens them as they are.
    const second = start();
    const url2 = await second.ready();
    expect(await fetchAsCredentials(url2)).toEqual(before.asCredentials);
    await expectServing(url2, "beta.test");
    expect((await second.stop()).code).toBe(0);
  }, 180_000);

  it("hands the QS's own variables to the namespaced QS: a rate limit, per client behind the edge gateway", async () => {
    // The edge gateway passes on the client it is told about (EDGE_TRUST_PROXY) and appends its
    // peer; the QS trusts the gateway on loopback by default, so it counts each client apart.
    const p = start({
      NATS_URL: natsUrl(),
      QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: "2",
      EDGE_TRUST_PROXY: "true",
    });
    const url = await p.ready();
    const fetchAddPackages = async (client: string) => {
      const response = await fetch(`${url}/v1/qs/add-packages/fetch`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": client },
        body: JSON.stringify({ friendshipToken: randomBytes(32).toString("base64"), domain: "" }),
      });
      return {
        status: response.status,
        json: (await response.json()) as { code?: number; message?: string },
      };
    };
    for (let i = 0; i < 2; i++) expect((await fetchAddPackages("198.51.100.1")).status).toBe(404);
    const refused = await fetchAddPackages("198.51.100.1");
    expect(refused.status).toBe(429);
    expect(refused.json.message).toContain("QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER");
    expect((await fetchAddPackages("198.51.100.2")).status).toBe(404);
    expect((await p.stop()).code).toBe(0);
  }, 180_000);

  it("keeps the embedded bus in a database of its own on the Postgres server when NATS_URL is unset", async () => {
    const busPrefix = `${prefix}e_`;
    const p = start({ HOMESERVER_DATABASE_PREFIX: busPrefix });
    const url = await p.ready();
    await expectServing(url, "beta.test");
    const databases = await adminQuery<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
      [busPrefix],
    );
    expect(databases.map((d) => d.datname)).toEqual(
      ["auth", "bus", "delivery", "federation", "queue"].map((name) => `${busPrefix}${name}`),
    );
    expect((await p.stop()).code).toBe(0);
  }, 180_000);
});
