import { execFileSync } from "node:child_process";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { toHex, utf8 } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { connectNatsBus } from "@phoenix/runtime/bus";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addPackage } from "./support/add-packages.js";
import { localGroup, publishFanOut } from "./support/fan-out.js";
import { Harness, natsUrl } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await Harness.start();
});
afterAll(async () => {
  await h?.stop();
});

/**
 * Pending and unacknowledged messages of the QS's durable fan-out consumer; undefined while it
 * does not exist (a QS taking over from one that left messages unacked recreates it).
 */
async function consumerBacklog(): Promise<{ pending: number; ackPending: number } | undefined> {
  const nc = await connect({ servers: natsUrl() });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.consumers.info(h.streams.fanOut, `qs-${h.suffix}`).catch(() => undefined);
    if (info === undefined) return undefined;
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  } finally {
    await nc.close();
  }
}

describe("crash safety", () => {
  it("a consumer killed after its commit but before the ack leaves exactly one queued message", async () => {
    const alice = await h.newUser();
    await h.stopService();

    // A replica whose process "dies" right after the commit: the hook never returns, then its
    // bus connection goes away without acking.
    const doomedBus = await connectNatsBus({ servers: natsUrl(), name: "qs-doomed", drainTimeoutMs: 100 });
    let committed: () => void = () => {};
    const commit = new Promise<void>((resolve) => {
      committed = resolve;
    });
    const doomed = await h.startInstance({
      bus: doomedBus,
      hooks: {
        fanOutAckWaitMs: 1500,
        afterFanOutCommit: () => {
          committed();
          return new Promise<void>(() => {});
        },
      },
    });
    const fanOut = await publishFanOut(h, { recipients: [alice.qsReference()] });
    await commit;
    await doomedBus.close();
    await doomed.stop();

    // A healthy replica takes over; the redelivered fan-out finds its marker and is acked.
    await h.startService({ hooks: { fanOutAckWaitMs: 1500 } });
    await eventually(
      async () => {
        const backlog = await consumerBacklog();
        return backlog?.pending === 0 && backlog.ackPending === 0 ? true : undefined;
      },
      { timeoutMs: 20_000 },
    );
    const res = await alice.dequeue(0n);
    expect(res.messages.map((m) => m.sequenceNumber)).toEqual([0n, 1n]);
    expect(alice.decrypt(res.messages).map(toHex)).toEqual([toHex(fanOut.payload)]);
  });
});

describe("database snapshot", () => {
  it("holds no payload, push token, friendship token, AddPackage or DS-known identifier in plaintext", async () => {
    const pushUrl = "https://push.example/device-7f3a9c";
    const alice = await h.newUser({
      pushToken: { provider: queue.PushProvider.PUSH_PROVIDER_WEBHOOK, token: pushUrl },
    });
    const bob = await h.newUser();
    const lastResort = await addPackage(alice, { lastResort: true });
    const ordinary = await addPackage(alice);
    await h.client.publishAddPackages({
      signed: await alice.signed(queue.PublishAddPackagesTbs, "publishAddPackages", {
        addPackages: [ordinary, lastResort],
      }),
    });
    const blocked = localGroup();
    await h.client.blockGroup({
      signed: await bob.signed(queue.BlockGroupTbs, "blockGroup", { groupId: blocked }),
    });
    const group = localGroup();
    const aliceRef = alice.qsReference();
    const bobRef = bob.qsReference();
    const payload = utf8("the plaintext payload 4b1d that must never be stored as such");
    const fanOut = await publishFanOut(h, { groupId: group, recipients: [aliceRef, bobRef], payload });
    await eventually(async () => ((await bob.dequeue(0n)).messages.length === 2 ? true : undefined));
    await eventually(async () => ((await alice.dequeue(0n)).messages.length === 2 ? true : undefined));

    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", h.db.url as string], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    }).toLowerCase();
    expect(dump).toContain("qs_messages"); // the dump did capture the QS tables
    const secrets: Record<string, Uint8Array> = {
      payload,
      "push token": utf8(pushUrl),
      "friendship token": alice.user.friendshipToken,
      "ordinary AddPackage": ordinary.subarray(0, 64),
      "last-resort AddPackage": lastResort.subarray(0, 64),
      "group id": group.uuid,
      "blocked group id": blocked.uuid,
      "fan-out id": fanOut.fanOutId,
      "alice's sealed queue config": aliceRef.sealedQueueConfig,
      "bob's sealed queue config": bobRef.sealedQueueConfig,
    };
    for (const [what, bytes] of Object.entries(secrets)) {
      expect(dump.includes(toHex(bytes)), `${what} (hex) in the dump`).toBe(false);
    }
    expect(dump.includes(pushUrl), "push token (text) in the dump").toBe(false);
  });
});
