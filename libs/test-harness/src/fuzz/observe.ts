// What the fuzzer watches on its target: rows per table of every service database, messages per
// bus stream, and each process's resident memory.
import { readFile } from "node:fs/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import type { FuzzTarget } from "./target.js";

/** `"<database>.<schema>.<table>"` or `"stream:<name>"` → count. */
export type StateCounts = Record<string, number>;

/**
 * Tables a rejected request may legitimately write: rate-limit buckets (a refused caller still
 * spends its tokens) and replay markers (a request whose signature verified claims its id before
 * its body is checked, so the same signed bytes can never be tried twice).
 */
export const VOLATILE_TABLE = /rate_limit|replay|seen_request|request_ids?$|nonce/i;

/** Reads the state counts of `target`: every user table of every database, every stream. */
export async function stateCounts(target: FuzzTarget): Promise<StateCounts> {
  const counts: StateCounts = {};
  for (const [service, url] of Object.entries(target.databaseUrls)) {
    const client = new pg.Client({ connectionString: url, application_name: "fuzz-observer" });
    client.on("error", () => {});
    await client.connect();
    try {
      const tables = await client.query<{ schemaname: string; relname: string }>(
        "SELECT schemaname, relname FROM pg_stat_user_tables WHERE schemaname NOT IN ('drizzle') ORDER BY 1, 2",
      );
      if (tables.rows.length === 0) continue;
      const union = tables.rows
        .map((t, i) => `SELECT ${i} AS i, count(*)::int AS n FROM "${t.schemaname}"."${t.relname}"`)
        .join(" UNION ALL ");
      const result = await client.query<{ i: number; n: number }>(union);
      for (const row of result.rows) {
        const t = tables.rows[row.i];
        if (t) counts[`${service}.${t.schemaname}.${t.relname}`] = row.n;
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const nc = await connect({ servers: target.natsUrl, name: "fuzz-observer" });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (!name.endsWith(`_${target.namespace}`)) continue;
      const info = await jsm.streams.info(name);
      // Messages ever stored (the last sequence), not the current count: a stream that drops
      // handled messages would otherwise hide a rejected request's publish.
      counts[`stream:${name}`] = info.state.last_seq;
    }
  } finally {
    await nc.close();
  }
  return counts;
}

/** The keys whose counts differ between `before` and `after` (volatile tables left out). */
export function stateDiff(before: StateCounts, after: StateCounts): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed: string[] = [];
  for (const key of [...keys].sort()) {
    if (VOLATILE_TABLE.test(key)) continue;
    if (before[key] !== after[key]) changed.push(`${key}: ${before[key] ?? "-"} → ${after[key] ?? "-"}`);
  }
  return changed;
}

/**
 * Waits until the counts stop moving (background work of earlier valid traffic — outbox relay,
 * consumers — has finished): two reads `intervalMs` apart agree. Returns the last read.
 */
export async function quiescentCounts(
  target: FuzzTarget,
  timeoutMs = 15_000,
  intervalMs = 400,
): Promise<StateCounts> {
  const deadline = Date.now() + timeoutMs;
  let last = await stateCounts(target);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    const next = await stateCounts(target);
    if (stateDiff(last, next).length === 0 || Date.now() > deadline) return next;
    last = next;
  }
}

/** The service a state key belongs to (`auth`, `delivery`, `queue`, `federation`, `bus`). */
export function serviceOfKey(key: string): string {
  return key.startsWith("stream:") ? "bus" : (key.split(".")[0] ?? key);
}

/** Resident set size in bytes of each running process of `target`, by service name. */
export async function residentMemory(target: FuzzTarget): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of target.processes) {
    if (!p.pid || !p.running) continue;
    const text = await readFile(`/proc/${p.pid}/status`, "utf8").catch(() => "");
    const match = /VmRSS:\s+(\d+) kB/.exec(text);
    if (match) out[p.name] = Number(match[1]) * 1024;
  }
  return out;
}
