import { describe, expect, it } from "vitest";
import {
  busSubjects,
  busTopology,
  domainOfPeerSubjectToken,
  federationOutboundSubject,
  outboundLaneDurable,
  peerSubjectToken,
} from "./layout.js";

// The literals operators, docs (docs/*.md, deploy/nats-authorization.conf) and running
// deployments know: a change here renames a live stream or subject.
describe("bus topology", () => {
  it("yields the deployment names without a namespace", () => {
    const topology = busTopology();
    expect(topology).toEqual({
      subjectPrefix: "",
      streams: {
        fanOut: "PHOENIX_FANOUT",
        queueDeleted: "PHOENIX_QUEUE_DELETED",
        federation: "PHOENIX_FEDERATION_OUTBOUND",
      },
      subjects: {
        fanOut: "phoenix.fanout",
        queueDeleted: "phoenix.queue_deleted",
        federationOutboundRoot: "phoenix.federation.outbound.",
        federationOutboundPattern: "phoenix.federation.outbound.>",
        queueActivityRoot: "phoenix.queue_activity.",
        connectionQueueActivityRoot: "phoenix.connection_queue_activity.",
      },
      durables: {
        queueFanOut: "queue-fanout",
        deliveryQueueDeleted: "delivery-queue-deleted",
        outboundScout: "fedgw-scout",
        lanePrefix: "fedgw",
      },
    });
    expect(federationOutboundSubject(topology.subjects, "chat.b.test")).toBe(
      "phoenix.federation.outbound.chat_b_test",
    );
  });

  it("prefixes subjects and suffixes streams of a namespace, as a namespaced homeserver always did", () => {
    expect(busTopology("t1")).toEqual({
      subjectPrefix: "t1.",
      streams: {
        fanOut: "PHOENIX_FANOUT_t1",
        queueDeleted: "PHOENIX_QUEUE_DELETED_t1",
        federation: "PHOENIX_FEDERATION_OUTBOUND_t1",
      },
      subjects: {
        fanOut: "t1.phoenix.fanout",
        queueDeleted: "t1.phoenix.queue_deleted",
        federationOutboundRoot: "t1.phoenix.federation.outbound.",
        federationOutboundPattern: "t1.phoenix.federation.outbound.>",
        queueActivityRoot: "t1.phoenix.queue_activity.",
        // The AS takes no prefix: its wake-ups stay where the NATS permissions grant them.
        connectionQueueActivityRoot: "phoenix.connection_queue_activity.",
      },
      durables: {
        queueFanOut: "queue-fanout",
        deliveryQueueDeleted: "delivery-queue-deleted",
        outboundScout: "fedgw-scout",
        lanePrefix: "fedgw",
      },
    });
    expect(busSubjects("run42.")).toEqual(busTopology("run42").subjects);
  });

  it("names a peer's subject token and lane, and reads the domain back", () => {
    expect(peerSubjectToken("chat.b.test")).toBe("chat_b_test");
    expect(domainOfPeerSubjectToken("chat_b_test")).toBe("chat.b.test");
    expect(outboundLaneDurable("fedgw", "chat.b.test")).toBe("fedgw-out-chat_b_test");
    // Past 48 characters the token is a hash of the domain (NATS name limits).
    const long = `${"a".repeat(30)}.${"b".repeat(30)}.test`;
    expect(outboundLaneDurable("fedgw", long)).toMatch(/^fedgw-out-[0-9a-f]{32}$/);
    expect(outboundLaneDurable("fedgw", long)).not.toBe(outboundLaneDurable("fedgw", `${long}x`));
  });
});
