// Two QS replicas on one database and bus: one of them at a time consumes fan-outs (the leader, under
// a database lock), so a recipient's queue holds the fan-outs in the order the DS published them —
// with two independent consumers of the shared durable, a later batch committed by one replica
// overtook an earlier one of the other (docs/chaos.md). When the leader stops, the other takes
// over and goes on in order.
import { toHex } from "@phoenix/crypto";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QueueService } from "../src/service.js";
import { publishFanOut } from "./support/fan-out.js";
import { Harness, type QueueInstance } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

let h: Harness;
let second: QueueInstance;
beforeAll(async () => {
  h = await Harness.start({ config: { QS_FANOUT_MAX_IN_FLIGHT: 8 } });
  second = await h.startInstance({ hooks: { fanOutLeaderRetryMs: 100, fanOutAckWaitMs: 1500 } });
});
afterAll(async () => {
  await second?.stop().catch(() => undefined);
  await h?.stop();
});

function leads(service: QueueService): boolean {
  const worker = service.workers.find((w) => w.name === "fan-out consumer") as
    | { leading?: boolean }
    | undefined;
  return worker?.leading === true;
}

/** Publishes `count` fan-outs to `to` one after another; returns their payloads in publish order. */
async function publishMany(to: TestClient[], count: number): Promise<string[]> {
  const payloads: string[] = [];
  for (let i = 0; i < count; i++) {
    const fanOut = await publishFanOut(h, { recipients: to.map((c) => c.qsReference()) });
    payloads.push(toHex(fanOut.payload));
  }
  return payloads;
}

async function receivedAll(client: TestClient, count: number): Promise<string[]> {
  return eventually(
    async () => {
      await client.drain(BigInt(client.receiver?.nextSequenceNumber ?? 0));
      return client.received.length >= count ? client.received.map(toHex) : undefined;
    },
    { timeoutMs: 30_000, message: () => `${count} payloads (have ${client.received.length})` },
  );
}

describe("fan-out consumer with two QS replicas", () => {
  it("runs on one replica at a time, and a recipient's queue keeps the publish order", async () => {
    await eventually(() => leads(h.service) !== leads(second.service), { message: "exactly one leader" });
    const [alice, bob] = [await h.newUser(), await h.newUser()];
    const sent = await publishMany([alice, bob], 120);
    expect(await receivedAll(alice, 120)).toEqual(sent);
    expect(await receivedAll(bob, 120)).toEqual(sent);
    // Still exactly one leader.
    expect([leads(h.service), leads(second.service)].filter(Boolean)).toHaveLength(1);
  });

  it("when the leader stops, the other replica takes over and delivers the rest in order", async () => {
    const carol = await h.newUser();
    const leaderIsFirst = leads(h.service);
    const before = await publishMany([carol], 30);
    expect(await receivedAll(carol, 30)).toEqual(before);
    // The leader goes away while more fan-outs are published.
    const publishing = publishMany([carol], 60);
    if (leaderIsFirst) await h.stopService();
    else await second.stop();
    const after = await publishing;
    if (!leaderIsFirst) await h.stopService().then(() => h.startService());
    else await h.startService({ hooks: { fanOutLeaderRetryMs: 100, fanOutAckWaitMs: 1500 } });
    const got = await receivedAll(carol, 90);
    const sentAll = [...before, ...after];
    expect(got).toEqual(sentAll);
    const replicas = leaderIsFirst ? [second.service, h.service] : [h.service];
    expect(replicas.filter(leads)).toHaveLength(1);
  });
});
