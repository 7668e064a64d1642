import { toHex } from "@phoenix/crypto";
import { eventually, fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";

// The all-in-one homeserver runs the gateway on PGlite with the embedded bus; its outbound lanes
// must keep the same order guarantee there.
describe("a gateway on the embedded bus (PGlite)", () => {
  let net: Network;

  beforeAll(async () => {
    net = await Network.start([A, B], { embedded: [A] });
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("delivers in both directions, and a backlog for a peer that was down arrives in order", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const back = fanOutEnvelope(B, A, new Uint8Array([0]));
    await b.publishOutbound(back, toHex(back.envelopeId));
    await eventually(() => a.fanOuts.some((m) => m.id === toHex(back.envelopeId)), {
      timeoutMs: 20_000,
      message: "B→A",
    });

    await b.stopGateway();
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) {
      const envelope = fanOutEnvelope(A, B, new Uint8Array([i]));
      sent.push(toHex(envelope.envelopeId));
      await a.publishOutbound(envelope, toHex(envelope.envelopeId));
    }
    // Time passes on purpose: A retries meanwhile, and nothing may arrive while B is down.
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.fanOuts).toHaveLength(0);
    await b.start();
    await eventually(() => b.fanOuts.length >= sent.length, { timeoutMs: 20_000, message: "the backlog" });
    expect(b.fanOuts.map((m) => m.id)).toEqual(sent);
  });
});
