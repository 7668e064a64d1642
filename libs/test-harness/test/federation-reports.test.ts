// A peer may report deleted queues only of its own recipients. alpha hosts a group with members
// on beta and gamma; beta (a genuine, allowed peer, signing with its real key) reports gamma's
// member gone. alpha's gateway must refuse it before anything reaches alpha's DS, or alpha's next
// commit would have to remove gamma's member.
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { toHex } from "@phoenix/crypto";
import { type common, events, federation, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { createChannel, createServiceClient, GrpcCallError } from "@phoenix/runtime/grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectUsers,
  type Federation,
  membersOf,
  startFederation,
  syncUntil,
  textsOf,
} from "../src/index.js";

const ALPHA = "alpha.test";
const BETA = "beta.test";
const GAMMA = "gamma.test";
const REPORT = rpcLabel(federation.FederationServiceService.reportQueueDeleted);

describe("queue-deleted reports across three domains", () => {
  let fed: Federation;

  beforeAll(async () => {
    fed = await startFederation({ domains: [ALPHA, BETA, GAMMA] });
  }, 180_000);
  afterAll(async () => {
    await fed?.stopAll();
  }, 60_000);

  /** beta's genuine ReportQueueDeleted to alpha naming `recipient` of `groupId`. */
  async function reportFromBeta(groupId: common.QualifiedGroupId, recipient: common.QsReference) {
    const report: events.QueueDeleted = {
      eventId: new Uint8Array(randomBytes(16)),
      groupId,
      recipient,
      reportedAt: new Date(),
    };
    const envelope: events.FederationEnvelope = {
      envelopeId: new Uint8Array(randomBytes(16)),
      sourceDomain: BETA,
      destinationDomain: ALPHA,
      content: { $case: "queueDeleted", value: report },
    };
    const signed = await signTbs(
      federation.ReportQueueDeletedTbs,
      { header: requestHeader(REPORT, { $case: "domain", value: BETA }), envelope },
      (label, bytes) => fed.homeserver(BETA).federationKey.sign(label, bytes),
    );
    const channel = createChannel(fed.homeserver(ALPHA).federationAddress);
    try {
      const gateway = createServiceClient(federation.FederationServiceService, channel);
      const outcome = await gateway.reportQueueDeleted({ signed }).catch((e: unknown) => e);
      return { outcome, eventId: toHex(report.eventId) };
    } finally {
      channel.close();
    }
  }

  it("beta reporting gamma's member of an alpha group is refused, stored nowhere, and changes nothing", async () => {
    const alice = await fed.client(ALPHA, "Alice");
    const bob = await fed.client(BETA, "Bob");
    const carol = await fed.client(GAMMA, "Carol");
    await connectUsers(alice, bob);
    await connectUsers(alice, carol);

    // The queue references alpha's DS fans out to, as every member's client learns them from
    // the KeyPackages in the group's commits: captured on alpha's fan-out subject.
    const nc = await connect({ servers: process.env.NATS_URL as string });
    const fanOuts: events.FanOut[] = [];
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(fed.homeserver(ALPHA).streams.fanOut);
      const sub = nc.subscribe(info.config.subjects[0] as string, {
        callback: (_err, msg) => {
          fanOuts.push(events.FanOut.decode(msg.data));
        },
      });
      const group = await alice.createConversation("Reports");
      await alice.invite(group, [bob.userId, carol.userId]);
      const all = [alice, bob, carol];
      const ids = all.map((c) => c.userId).sort();
      for (const c of all)
        await syncUntil(c, () => JSON.stringify(membersOf(c, group)) === JSON.stringify(ids), "all three in");
      await nc.flush();
      sub.unsubscribe();

      const withGamma = fanOuts.find((f) => f.recipients.some((r) => r.domain === GAMMA));
      const carolRef = withGamma?.recipients.find((r) => r.domain === GAMMA);
      if (withGamma?.groupId === undefined || carolRef === undefined)
        throw new Error("no fan-out of the group reached beta and gamma");

      // beta names gamma's member: refused, nothing handed to alpha's DS. Read off the wire: the
      // queue-deleted stream is a work queue, alpha's DS takes out what it handled.
      const handedOver: string[] = [];
      const queueDeleted = await jsm.streams.info(fed.homeserver(ALPHA).streams.queueDeleted);
      const reports = nc.subscribe(queueDeleted.config.subjects[0] as string, {
        callback: (_err, msg) => {
          const id = msg.headers?.get("Nats-Msg-Id");
          if (id) handedOver.push(id);
        },
      });
      await nc.flush();
      const foreign = await reportFromBeta(withGamma.groupId, carolRef);
      expect(foreign.outcome).toBeInstanceOf(GrpcCallError);
      expect((foreign.outcome as GrpcCallError).code).toBe(status.PERMISSION_DENIED);
      expect((foreign.outcome as GrpcCallError).message).toMatch(/gamma\.test/);
      await nc.flush();
      reports.unsubscribe();
      expect(handedOver).not.toContain(foreign.eventId);

      // The same forgery with the reference relabelled as beta's: accepted by the gateway (beta
      // may report its own recipients) but it names no member, so nothing is removed.
      const relabelled = await reportFromBeta(withGamma.groupId, { ...carolRef, domain: BETA });
      expect(relabelled.outcome).toEqual({});

      // alice's next commit goes through without removing anyone; carol still gets messages.
      await alice.updateKeys(group);
      await alice.sendMessage(group, "still here?");
      await syncUntil(carol, () => textsOf(carol, group).includes("still here?"), "the message at Carol");
      expect(membersOf(alice, group)).toEqual(ids);
      await syncUntil(
        carol,
        () => JSON.stringify(membersOf(carol, group)) === JSON.stringify(ids),
        "members",
      );
    } finally {
      await nc.close();
    }
  }, 180_000);
});
