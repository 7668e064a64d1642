import { toHex } from "@phoenix/crypto";
import { federation } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { eventually, fanOutEnvelope, ServiceProcess } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";
const FAST = {
  FEDERATION_DELIVERY_TIMEOUT: "500ms",
  FEDERATION_RETRY_MAX: "200ms",
  FEDERATION_LANE_LEASE: "2s",
};

// The gateway process (src/main.ts) is killed with SIGKILL while it holds a message for a peer
// that is down: the next deliverer must not let later messages overtake the held one.
describe("a gateway process killed while it holds a message", () => {
  let net: Network;
  let child: ServiceProcess | undefined;

  beforeAll(async () => {
    net = await Network.start([A, B], { env: { [A]: FAST } });
  });
  afterAll(async () => {
    await child?.kill();
    await net?.stop();
  });

  it("the restarted gateway delivers the backlog in order", async () => {
    const a = net.node(A);
    const b = net.node(B);
    await a.stopGateway();
    const gateway = ServiceProcess.spawn({
      name: "federation-gateway",
      entry: "services/federation-gateway/src/main.ts",
      env: { ...a.env(), ...FAST, DATABASE_URL: a.db.url ?? "", LOG_LEVEL: "warn" },
    });
    child = gateway;
    const channel = createChannel(`127.0.0.1:${a.port}`);
    try {
      const probe = createServiceClient(federation.FederationServiceService, channel);
      await eventually(
        () => {
          if (!gateway.running) throw gateway.startError("exited before it served");
          return probe.getDomainKeys({}, { deadlineMs: 500 }).then(
            () => true,
            () => false,
          );
        },
        { timeoutMs: 60_000, message: "the gateway process" },
      );
    } finally {
      channel.close();
    }
    await b.stopGateway();
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const envelope = fanOutEnvelope(A, B, new Uint8Array([i]));
      sent.push(toHex(envelope.envelopeId));
      await a.publishOutbound(envelope, toHex(envelope.envelopeId));
    }
    // Kill the process as soon as it holds the first message (well inside the lease).
    await gateway.waitForLine((l) => l.msg.includes("delivery to peer failed"), {
      what: "the process holding a message",
      timeoutMs: 20_000,
    });
    await gateway.kill();
    child = undefined;
    await a.start();
    await b.start();
    await eventually(() => b.fanOuts.length >= sent.length, { timeoutMs: 30_000, message: "the backlog" });
    expect(b.fanOuts.map((m) => m.id)).toEqual(sent);
  });
});
