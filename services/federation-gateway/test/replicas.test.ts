import { status } from "@grpc/grpc-js";
import { toHex } from "@phoenix/crypto";
import { federation, rpcLabel } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { eventually, fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { type GatewayInstance, Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";

describe("two gateway replicas of one homeserver", () => {
  let net: Network;
  let replica: GatewayInstance | undefined;

  beforeAll(async () => {
    net = await Network.start([A, B]);
  });
  afterAll(async () => {
    await replica?.stop();
    await net?.stop();
  });

  it("one replica delivers at a time; when it stops the other takes over and the order holds", async () => {
    const a = net.node(A);
    const b = net.node(B);
    // The extra replica becomes the deliverer; the one at A's public address (where B fetches
    // A's keys) stands by.
    await a.stopGateway();
    replica = await a.startReplica();
    await eventually(() => replica?.gateway.lanes.delivering === true, {
      timeoutMs: 20_000,
      message: "the replica delivering",
    });
    const main = await a.start();
    await b.stopGateway();
    const sent: string[] = [];
    for (let i = 0; i < 8; i++) {
      const envelope = fanOutEnvelope(A, B, new Uint8Array([i]));
      sent.push(toHex(envelope.envelopeId));
      await a.publishOutbound(envelope, toHex(envelope.envelopeId));
    }
    // Time passes on purpose: the standby must stay standing by while the replica holds the lane.
    await new Promise((r) => setTimeout(r, 500));
    expect(main.gateway.lanes.delivering).toBe(false);
    expect(replica.gateway.lanes.delivering).toBe(true);
    await replica.stop();
    replica = undefined;
    await eventually(() => main.gateway.lanes.delivering, {
      timeoutMs: 20_000,
      message: "the standby taking over",
    });
    await b.start();
    await eventually(() => b.fanOuts.length >= sent.length, { timeoutMs: 20_000, message: "the backlog" });
    expect(b.fanOuts.map((m) => m.id)).toEqual(sent);
  });

  it("a request replayed to another replica is refused with UNAUTHENTICATED", async () => {
    const b = net.node(B);
    const key = net.node(A).running?.gateway.context.keys.active()?.signingKey;
    if (!key) throw new Error("A has no key");
    const signed = await signFederationRequest(
      federation.DeliverFanOutTbs,
      rpcLabel(federation.FederationServiceService.deliverFanOut),
      A,
      key,
      { envelope: fanOutEnvelope(A, B, new Uint8Array([1])) },
    );
    await net.federationClient(B).deliverFanOut({ signed });
    const other = await b.startReplica();
    const channel = createChannel(`127.0.0.1:${other.port}`);
    try {
      const client = createServiceClient(federation.FederationServiceService, channel);
      await expect(client.deliverFanOut({ signed })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    } finally {
      channel.close();
      await other.stop();
    }
  });
});
