// What the DS keeps of queue-deleted reports: only reports naming the reporter's own recipients,
// one per reported reference, at most DS_MAX_QUEUE_REPORTS per group, none past
// DS_QUEUE_REPORT_TTL (injected clock).
import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { toHex } from "@phoenix/crypto";
import { updateOwnLeaf } from "@phoenix/mls";
import { type common, events } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeQueueReports } from "../src/domain/queue-reports.js";
import { groups } from "../src/store/schema.js";
import { Harness, natsUrl, TestGroup } from "./support/harness.js";

const DAY = 86_400_000;
const PEER = "beta.test";

describe("bounded queue-deleted reports", () => {
  let h: Harness;
  let offset = 0;
  beforeAll(async () => {
    h = await Harness.start({ now: () => Date.now() + offset, env: { DS_MAX_QUEUE_REPORTS: "2" } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function storedReports(g: TestGroup): Promise<number> {
    const [row] = await h.db.db
      .select({ reports: groups.queueReports })
      .from(groups)
      .where(eq(groups.groupId, g.groupId.uuid));
    return decodeQueueReports(row?.reports ?? new Uint8Array()).length;
  }

  /** Publishes a report as the QS (no header) or as the gateway relaying `peer`'s report. */
  async function report(g: TestGroup, recipient: common.QsReference, peer?: string): Promise<void> {
    const event: events.QueueDeleted = {
      eventId: new Uint8Array(randomBytes(16)),
      groupId: g.groupId,
      recipient,
      reportedAt: new Date(),
    };
    await h.bus.publish(h.queueDeletedSubject, events.QueueDeleted.encode(event).finish(), {
      id: toHex(event.eventId),
      ...(peer === undefined ? {} : { headers: { "phoenix-source-domain": peer } }),
    });
  }

  /** Waits until the DS's consumer has handled and acked every report published so far. */
  async function drained(): Promise<void> {
    const nc = await connect({ servers: natsUrl() });
    try {
      const jsm = await jetstreamManager(nc);
      await eventually(
        async () => {
          const info = await jsm.consumers.info(h.queueDeletedStream, "delivery-queue-deleted");
          return info.num_pending === 0 && info.num_ack_pending === 0;
        },
        { timeoutMs: 15_000, message: "the DS to consume the reports" },
      );
    } finally {
      await nc.close();
    }
  }

  const peerQueue = (): common.QsReference => ({
    domain: PEER,
    sealedQueueConfig: new Uint8Array(randomBytes(48)),
  });

  it("drops a peer's report naming a member of another domain; the next commit goes through", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);

    // beta's gateway relays a report naming bob, whose queue is on this domain.
    await report(g, bob.queue, PEER);
    await drained();
    expect(await storedReports(g)).toBe(0);

    const upd = await updateOwnLeaf(alice.mls(), h.cs);
    const res = await g.operation(alice, upd.commit, upd.groupInfo);
    expect(res.epoch).toBe(2n);
  });

  it("keeps one report per reference and at most DS_MAX_QUEUE_REPORTS per group", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);

    await report(g, bob.queue);
    await report(g, bob.queue); // another fan-out, same missing queue
    await drained();
    expect(await storedReports(g)).toBe(1);

    await report(g, peerQueue(), PEER);
    await report(g, peerQueue(), PEER);
    await report(g, peerQueue(), PEER);
    await drained();
    expect(await storedReports(g)).toBe(2);
  });

  it("drops reports older than DS_QUEUE_REPORT_TTL: not folded into a commit, pruned by the sweep", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob, carol]);
    const other = await TestGroup.create(h, carol);

    await report(g, bob.queue);
    await report(other, carol.queue);
    await drained();
    expect(await storedReports(g)).toBe(1);
    expect(await storedReports(other)).toBe(1);

    offset = 9 * DAY; // beyond the default 7 days
    try {
      // bob's lapsed report does not make alice's commit remove him.
      const upd = await updateOwnLeaf(alice.mls(), h.cs);
      const res = await g.operation(alice, upd.commit, upd.groupInfo);
      expect(res.epoch).toBe(2n);

      const service = h.running?.service;
      if (service === undefined) throw new Error("the DS runs in process");
      const swept = await service.sweep();
      expect(swept.queueReports).toBeGreaterThanOrEqual(1);
      expect(await storedReports(other)).toBe(0);
    } finally {
      offset = 0;
    }
  });
});
