// What a copy of a deployment's bus store holds: the NATS streams of the run, or the embedded
// bus's PGlite database (read from a copy of its directory, as someone seizing the disk would).
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { openDatabase } from "@phoenix/runtime/db";
import type { Deployment } from "@phoenix/test-harness";

/** Messages stored per stream of the deployment's bus (NATS stream state / embedded bus rows). */
export async function busStoreMessages(deployment: Deployment): Promise<Record<string, number>> {
  const { streams, dataDir } = deployment.storage;
  if (dataDir !== undefined) return embeddedBusMessages(join(dataDir, "pglite", "homeserver"));
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set");
  const nc = await connect({ servers: url, name: "e2e-bus-store" });
  try {
    const jsm = await jetstreamManager(nc);
    const counts: Record<string, number> = {};
    for (const stream of streams) counts[stream] = (await jsm.streams.info(stream)).state.messages;
    return counts;
  } finally {
    await nc.close();
  }
}

async function embeddedBusMessages(busDir: string): Promise<Record<string, number>> {
  const copy = await mkdtemp(join(tmpdir(), "phoenix-bus-copy-"));
  try {
    await cp(busDir, copy, { recursive: true });
    const handle = await openDatabase({ driver: "pglite", dataDir: copy });
    try {
      const result = await handle.db.execute(
        "SELECT stream, count(*)::int AS n FROM phoenix_bus.messages GROUP BY stream",
      );
      // `execute` returns `{ rows }` on both drivers.
      const rows = (result as unknown as { rows: { stream: string; n: number }[] }).rows;
      return Object.fromEntries(rows.map((r) => [r.stream, r.n]));
    } finally {
      await handle.close();
    }
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}
