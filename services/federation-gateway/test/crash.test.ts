import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { toHex } from "@phoenix/crypto";
import { federation } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Network, waitFor } from "./harness.js";

const A = "a.test";
const B = "b.test";
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FAST = {
  FEDERATION_DELIVERY_TIMEOUT: "500ms",
  FEDERATION_RETRY_MAX: "200ms",
  FEDERATION_LANE_LEASE: "2s",
};

// The gateway process (src/main.ts) is killed with SIGKILL while it holds a message for a peer
// that is down: the next deliverer must not let later messages overtake the held one.
describe("a gateway process killed while it holds a message", () => {
  let net: Network;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    net = await Network.start([A, B], { env: { [A]: FAST } });
  });
  afterAll(async () => {
    child?.kill("SIGKILL");
    await net?.stop();
  });

  it("the restarted gateway delivers the backlog in order", async () => {
    const a = net.node(A);
    const b = net.node(B);
    await a.stopGateway();
    child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "services/federation-gateway/src/main.ts"],
      {
        cwd: ROOT,
        env: { ...process.env, ...a.env(), ...FAST, DATABASE_URL: a.db.url ?? "", LOG_LEVEL: "warn" },
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise((resolve) => child?.once("exit", resolve));
    const channel = createChannel(`127.0.0.1:${a.port}`);
    try {
      const probe = createServiceClient(federation.FederationServiceService, channel);
      await waitFor(
        () =>
          probe.getDomainKeys({}, { deadlineMs: 500 }).then(
            () => true,
            () => false,
          ),
        "the gateway process",
        60_000,
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
    await waitFor(() => output.includes("delivery to peer failed"), "the process holding a message");
    child.kill("SIGKILL");
    await exited;
    child = undefined;
    await a.start();
    await b.start();
    await waitFor(() => b.fanOuts.length >= sent.length, "the backlog", 30_000);
    expect(b.fanOuts.map((m) => m.id)).toEqual(sent);
  });
});
