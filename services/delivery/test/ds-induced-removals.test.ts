// Things the DS does on its own: turning the QS's queue-deleted reports into required removals,
// and deleting groups nobody used for longer than the configured limit (injected clock).
import { randomBytes } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { toHex } from "@phoenix/crypto";
import { removeMembers, updateOwnLeaf } from "@phoenix/mls";
import { common, type delivery, errorDetailFromMetadata, events } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { groups } from "../src/store/schema.js";
import { call, codeOf, Harness, TestGroup } from "./support/harness.js";

const DAY = 86_400_000;

describe("DS-induced removals and the inactive-group sweep", () => {
  let h: Harness;
  let offset = 0;
  beforeAll(async () => {
    h = await Harness.start({ now: () => Date.now() + offset });
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function queueReports(g: TestGroup): Promise<Uint8Array> {
    const [row] = await h.db.db
      .select({ reports: groups.queueReports })
      .from(groups)
      .where(eq(groups.groupId, g.groupId.uuid));
    return row?.reports ?? new Uint8Array();
  }

  function connectionGroupInfo(g: TestGroup): Promise<delivery.ConnectionGroupInfoResponse> {
    return call((d) => h.client.connectionGroupInfo({ groupId: g.groupId, groupStateEarKey: g.earKey }, d));
  }

  it("stores a queue-deleted report sealed and makes the next commit remove that client", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob, carol]);

    // The QS reports bob's queue gone (as it does when a fan-out finds no queue).
    const event: events.QueueDeleted = {
      eventId: new Uint8Array(randomBytes(16)),
      groupId: g.groupId,
      recipient: bob.queue,
      reportedAt: new Date(),
    };
    await h.bus.publish(h.queueDeletedSubject, events.QueueDeleted.encode(event).finish(), {
      id: toHex(event.eventId),
    });
    const stored = await eventually(
      async () => {
        const reports = await queueReports(g);
        return reports.length > 0 && reports;
      },
      { message: "the queue report to be stored" },
    );
    // Sealed to the group's report key: the queue config does not appear in the row.
    expect(toHex(stored).includes(toHex(bob.queue.sealedQueueConfig))).toBe(false);

    // alice's next commit must remove bob; it is refused, naming him, and everyone is told.
    const upd = await updateOwnLeaf(alice.mls(), h.cs);
    const refused = await g.operation(alice, upd.commit, upd.groupInfo).catch((e: grpc.ServiceError) => e);
    expect(await codeOf(Promise.reject(refused))).toBe("FAILED_PRECONDITION");
    const detail = errorDetailFromMetadata((refused as grpc.ServiceError).metadata);
    if (detail?.detail?.$case !== "pendingProposals") throw new Error("expected PendingProposals");
    expect(detail.detail.value.requiredRemovals).toEqual([
      { leafIndex: bob.leaf, reason: common.RemovalReason.REMOVAL_REASON_QUEUE_DELETED },
    ]);
    const notice = await h.waitForPayload(carol, "requiredRemovals");
    if (notice.content?.$case !== "requiredRemovals") throw new Error("expected RequiredRemovals");
    expect(notice.content.value.removals).toEqual([
      { leafIndex: bob.leaf, reason: common.RemovalReason.REMOVAL_REASON_QUEUE_DELETED },
    ]);
    // The report was folded into the encrypted state.
    expect(await queueReports(g)).toHaveLength(0);

    // carol is no admin, but may carry out a DS-required removal; then the group moves on.
    const rm = await removeMembers(carol.mls(), h.cs, [bob.leaf]);
    const res = await g.operation(carol, rm.commit, rm.groupInfo);
    expect(res.epoch).toBe(2n);
    await g.processByOthers(carol, rm.commit);
    carol.state = rm.newState;
    const info = await g.externalCommitInfo(carol);
    expect(info.members.map((m) => m.leafIndex).sort()).toEqual([alice.leaf, carol.leaf].sort());
  });

  it("deletes groups without a commit beyond DS_GROUP_INACTIVITY and lapsed reservations", async () => {
    const idle = await TestGroup.create(h, await h.user("idle").client());
    const reserved = await call<delivery.RequestGroupIdResponse>((d) => h.client.requestGroupId({}, d));
    expect(reserved.groupId?.uuid).toHaveLength(16);
    offset = 400 * DAY; // beyond the default 365 days
    try {
      const fresh = await TestGroup.create(h, await h.user("fresh").client());
      const service = h.running?.service;
      if (service === undefined) throw new Error("the DS runs in process");
      const swept = await service.sweep();
      expect(swept.groups).toBeGreaterThanOrEqual(1);
      expect(swept.reservations).toBeGreaterThanOrEqual(1);
      expect(await codeOf(connectionGroupInfo(idle))).toBe("NOT_FOUND");
      expect(await codeOf(connectionGroupInfo(fresh))).toBe("OK");
    } finally {
      offset = 0;
    }
  });
});
