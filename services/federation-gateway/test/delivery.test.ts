import { toHex } from "@phoenix/crypto";
import { events, federation, rpcLabel } from "@phoenix/proto";
import { eventually, fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";

describe("QS-to-QS delivery between two gateways", () => {
  let net: Network;

  beforeAll(async () => {
    // A's lane lease (1.7 s) is shorter than B's outage below: a live lane holds its message
    // past the lease without losing the order.
    net = await Network.start([A, B], {
      env: {
        [A]: {
          FEDERATION_DELIVERY_TIMEOUT: "500ms",
          FEDERATION_RETRY_MAX: "200ms",
          FEDERATION_LANE_LEASE: "1s",
        },
      },
    });
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("a signed fan-out from A lands on B's fan-out subject once, even when A's QS hands it over twice", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const envelope = fanOutEnvelope(A, B, new Uint8Array([1, 2, 3]));
    // Two outbound messages with different bus ids but the same envelope (a QS redelivery after
    // the dedupe window): the gateway of A delivers both, B must publish one.
    await a.publishOutbound(envelope, `${toHex(envelope.envelopeId)}-1`);
    await a.publishOutbound(envelope, `${toHex(envelope.envelopeId)}-2`);
    const marker = fanOutEnvelope(A, B, new Uint8Array([9]));
    await a.publishOutbound(marker, toHex(marker.envelopeId));
    await eventually(() => b.fanOuts.some((m) => m.id === toHex(marker.envelopeId)), {
      timeoutMs: 20_000,
      message: "the marker fan-out",
    });
    const copies = b.fanOuts.filter((m) => m.id === toHex(envelope.envelopeId));
    expect(copies).toHaveLength(1);
    const fanOut = events.FanOut.decode(copies[0]?.data ?? new Uint8Array());
    expect(fanOut.payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(fanOut.recipients[0]?.domain).toBe(B);
  });

  it("a second signed DeliverFanOut of the same envelope is answered OK without effect", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const client = net.federationClient(B);
    const key = a.running?.gateway.context.keys.active();
    if (!key) throw new Error("A has no key");
    const envelope = fanOutEnvelope(A, B, new Uint8Array([7]));
    const label = rpcLabel(federation.FederationServiceService.deliverFanOut);
    for (let i = 0; i < 3; i++) {
      const signed = await signFederationRequest(federation.DeliverFanOutTbs, label, A, key.signingKey, {
        envelope,
      });
      await client.deliverFanOut({ signed });
    }
    const id = toHex(envelope.envelopeId);
    await eventually(() => b.fanOuts.some((m) => m.id === id), { timeoutMs: 20_000, message: "the fan-out" });
    expect(b.fanOuts.filter((m) => m.id === id)).toHaveLength(1);
  });

  it("queue-deleted reports travel back to the DS domain's queue-deleted subject", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const eventId = new Uint8Array(16).fill(5);
    const envelope: events.FederationEnvelope = {
      envelopeId: new Uint8Array(16).fill(6),
      sourceDomain: B,
      destinationDomain: A,
      content: {
        $case: "queueDeleted",
        value: {
          eventId,
          groupId: { uuid: new Uint8Array(16).fill(1), domain: A },
          recipient: { domain: B, sealedQueueConfig: new Uint8Array([4]) },
          reportedAt: new Date(),
        },
      },
    };
    await b.publishOutbound(envelope, toHex(envelope.envelopeId));
    await eventually(() => a.queueDeleted.length > 0, { timeoutMs: 20_000, message: "the report on A" });
    const report = events.QueueDeleted.decode(a.queueDeleted[0]?.data ?? new Uint8Array());
    expect(a.queueDeleted[0]?.id).toBe(toHex(eventId));
    expect(report.groupId?.domain).toBe(A);
    expect(report.recipient?.sealedQueueConfig).toEqual(new Uint8Array([4]));
  });

  it("while B is down A's messages wait, and arrive in order once B is back", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const before = b.fanOuts.length;
    await b.stopGateway();
    const sent: string[] = [];
    for (let i = 0; i < 15; i++) {
      const envelope = fanOutEnvelope(A, B, new Uint8Array([i]));
      sent.push(toHex(envelope.envelopeId));
      await a.publishOutbound(envelope, toHex(envelope.envelopeId));
    }
    // Time passes on purpose: A retries with backoff meanwhile, and nothing may arrive.
    await new Promise((r) => setTimeout(r, 3000));
    expect(b.fanOuts.length).toBe(before);
    await b.start();
    await eventually(() => b.fanOuts.length >= before + sent.length, {
      timeoutMs: 20_000,
      message: "the backlog",
    });
    expect(b.fanOuts.slice(before).map((m) => m.id)).toEqual(sent);
    // Nothing more trickles in (no duplicate, nothing reordered behind the backlog).
    const marker = fanOutEnvelope(A, B, new Uint8Array([99]));
    await a.publishOutbound(marker, toHex(marker.envelopeId));
    await eventually(() => b.fanOuts.some((m) => m.id === toHex(marker.envelopeId)), {
      timeoutMs: 20_000,
      message: "the marker",
    });
    expect(b.fanOuts.slice(before).map((m) => m.id)).toEqual([...sent, toHex(marker.envelopeId)]);
  });
});

describe("delivery lanes are per peer", () => {
  const C = "c.test";
  let net: Network;

  beforeAll(async () => {
    net = await Network.start([A, B, C]);
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("a peer that is down holds back only its own messages", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const c = net.node(C);
    await b.stopGateway();
    const toB = fanOutEnvelope(A, B, new Uint8Array([1]));
    await a.publishOutbound(toB, toHex(toB.envelopeId));
    const toC = fanOutEnvelope(A, C, new Uint8Array([2]));
    await a.publishOutbound(toC, toHex(toC.envelopeId));
    await eventually(() => c.fanOuts.some((m) => m.id === toHex(toC.envelopeId)), {
      timeoutMs: 20_000,
      message: "C's message while B is down",
    });
    expect(b.fanOuts).toHaveLength(0);
    await b.start();
    await eventually(() => b.fanOuts.some((m) => m.id === toHex(toB.envelopeId)), {
      timeoutMs: 20_000,
      message: "B's message after it is back",
    });
  });
});

describe("an envelope too large for the peer", () => {
  let net: Network;

  beforeAll(async () => {
    net = await Network.start([A, B], { env: { [B]: { GRPC_MAX_MESSAGE_BYTES: "4096" } } });
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("is dropped instead of blocking the lane, and later messages still arrive", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const big = fanOutEnvelope(A, B, new Uint8Array(16 * 1024));
    await a.publishOutbound(big, toHex(big.envelopeId));
    const small = fanOutEnvelope(A, B, new Uint8Array([1]));
    await a.publishOutbound(small, toHex(small.envelopeId));
    await eventually(() => b.fanOuts.some((m) => m.id === toHex(small.envelopeId)), {
      timeoutMs: 20_000,
      message: "the small message",
    });
    expect(b.fanOuts.map((m) => m.id)).toEqual([toHex(small.envelopeId)]);
    const dropped = await a.running?.gateway.metrics.dropped.get();
    expect(dropped?.values.find((v) => v.labels.reason === "refused")?.value).toBe(1);
  });
});
