import { eventually } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishFanOut } from "./support/fan-out.js";
import { Harness } from "./support/harness.js";

const HOUR = 3600_000;
let clockOffsetMs = 0;
let h: Harness;

beforeAll(async () => {
  h = await Harness.start({
    config: { QS_FANOUT_MARKER_RETENTION: 2 * HOUR },
    now: () => Date.now() + clockOffsetMs,
  });
});
afterAll(async () => {
  await h?.stop();
});

async function markers(): Promise<number> {
  const result = (await h.db.db.execute(
    sql`select count(*)::int as n from qs_handled_fan_outs`,
  )) as unknown as {
    rows: { n: number }[];
  };
  return result.rows[0]?.n ?? 0;
}

describe("handled fan-out markers", () => {
  it("are swept QS_FANOUT_MARKER_RETENTION after the fan-out was handled", async () => {
    const alice = await h.newUser();
    alice.clock = () => new Date(Date.now() + clockOffsetMs);
    await publishFanOut(h, { recipients: [alice.qsReference()] });
    await eventually(async () => ((await alice.dequeue(0n)).messages.length >= 2 ? true : undefined));
    const handled = await markers();
    expect(handled).toBeGreaterThanOrEqual(1);

    await h.service.sweep();
    expect(await markers()).toBe(handled);
    // Stored floored to the hour: three hours on, the marker is past the two-hour retention.
    clockOffsetMs = 3 * HOUR;
    await h.service.sweep();
    expect(await markers()).toBe(0);
  });
});
