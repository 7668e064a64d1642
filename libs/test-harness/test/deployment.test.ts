import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Deployment, ProcessStartError, startDeployment } from "../src/index.js";

async function existingDatabases(names: readonly string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    const result = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname",
      [names],
    );
    return result.rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

async function existingStreams(names: readonly string[]): Promise<string[]> {
  const nc = await connect({ servers: process.env.NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    const found: string[] = [];
    for (const name of names) if (await jsm.streams.info(name).catch(() => undefined)) found.push(name);
    return found.sort();
  } finally {
    await nc.close();
  }
}

describe("startDeployment (five services as processes)", () => {
  const started: Deployment[] = [];
  afterAll(async () => {
    for (const d of started) await d.stop();
  });

  it("starts auth, delivery, queue, federation and edge gateway behind one URL, and stop removes every trace", async () => {
    // Readiness is the listeners, not log lines: quiet services start as well.
    const d = await startDeployment({ kind: "services", domain: "harness.test", logLevel: "warn" });
    started.push(d);
    expect(d.processes.map((p) => p.name)).toEqual([
      "auth",
      "delivery",
      "queue",
      "federation-gateway",
      "edge-gateway",
    ]);
    const ready = await fetch(`${d.url}/readyz`);
    expect(ready.status).toBe(200);
    const credentials = (await (await fetch(`${d.url}/v1/as/credentials`)).json()) as { domain: string };
    expect(credentials.domain).toBe("harness.test");
    expect(await existingDatabases(d.storage.databases)).toEqual([...d.storage.databases].sort());
    expect(await existingStreams(d.storage.streams)).toEqual([...d.storage.streams].sort());

    const processes = d.processes;
    await d.stop();
    for (const p of processes) expect((await p.exited).code).toBe(0);
    expect(await existingDatabases(d.storage.databases)).toEqual([]);
    expect(await existingStreams(d.storage.streams)).toEqual([]);
  }, 180_000);

  it("fails a start with the failing service's own output", async () => {
    const error = await startDeployment({
      kind: "services",
      env: { DS_PADDING_BUCKETS: "lots" },
      startTimeoutMs: 60_000,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProcessStartError);
    expect((error as Error).message).toMatch(/^delivery exited/);
    expect((error as Error).message).toContain("DS_PADDING_BUCKETS");
  }, 120_000);
});
