// When a gateway may federate without TLS: with the explicit FEDERATION_INSECURE_PLAINTEXT opt-in
// (logged at warn level on start), or on a loopback listener, where it also dials loopback peers
// only. A listener other hosts can reach without TLS and without the opt-in does not start.
import { toHex } from "@phoenix/crypto";
import { eventually, fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerResolver } from "../src/discovery/resolver.js";
import { PeerDiscoveryError } from "../src/domain/errors.js";
import { PeerClients } from "../src/outbound/peer-clients.js";
import { isLoopbackHost, loadTls } from "../src/outbound/tls.js";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";

interface LogLine {
  level: string;
  msg: string;
}

const noTls = { FEDERATION_MTLS: false, FEDERATION_INSECURE_PLAINTEXT: false };

describe("the transport rule", () => {
  it("tells loopback listeners from reachable ones", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "", "10.0.0.7", "192.0.2.1", "federation.a.test", "128.0.0.1"])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it("refuses plaintext on a reachable listener without the opt-in, naming the variables", () => {
    expect(() => loadTls({ ...noTls, GRPC_HOST: "0.0.0.0" })).toThrow(
      /binds 0\.0\.0\.0 .*FEDERATION_TLS_CERT_FILE and FEDERATION_TLS_KEY_FILE.*FEDERATION_INSECURE_PLAINTEXT=true/,
    );
    expect(loadTls({ ...noTls, GRPC_HOST: "127.0.0.1" })).toEqual({
      mutual: false,
      plaintext: true,
      loopbackOnly: true,
    });
    expect(loadTls({ ...noTls, GRPC_HOST: "0.0.0.0", FEDERATION_INSECURE_PLAINTEXT: true })).toEqual({
      mutual: false,
      plaintext: true,
    });
  });

  it("without the opt-in dials peers on loopback only", async () => {
    const resolver = new PeerResolver({
      staticPeers: new Map([
        ["far.test", { host: "192.0.2.1", port: 8443 }],
        ["near.test", { host: "127.0.0.1", port: 8443 }],
      ]),
      staticOnly: true,
    });
    const clients = new PeerClients(
      resolver,
      { mutual: false, plaintext: true, loopbackOnly: true },
      1 << 20,
    );
    try {
      await expect(clients.get("far.test")).rejects.toThrow(PeerDiscoveryError);
      await expect(clients.get("far.test")).rejects.toThrow(/192\.0\.2\.1.*FEDERATION_TLS_CERT_FILE/);
      // The loopback peer gets a client, and the same one again (one channel per peer).
      const near = await clients.get("near.test");
      expect(near.getDomainKeys).toBeTypeOf("function");
      expect(await clients.get("near.test")).toBe(near);
    } finally {
      clients.close();
    }
  });
});

describe("gateways without TLS", () => {
  let net: Network;
  beforeAll(async () => {
    // The harness opts in explicitly (FEDERATION_INSECURE_PLAINTEXT=true).
    net = await Network.start([A, B], { env: { [A]: { LOG_LEVEL: "info" } } });
  });
  afterAll(async () => {
    await net?.stop();
  });

  const lines = (): LogLine[] => net.node(A).logs.map((l) => JSON.parse(l) as LogLine);

  it("log the explicit opt-in at warn level on start", () => {
    const warning = lines().find((l) => /FEDERATION_INSECURE_PLAINTEXT=true/.test(l.msg));
    expect(warning?.level).toBe("warn");
    expect(warning?.msg).toMatch(/WITHOUT TLS/);
  });

  it("federate on loopback without the opt-in, and refuse to start on a reachable address", async () => {
    const a = net.node(A);
    await a.stopGateway();
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: nothing is ever bound there.
    await expect(a.start({ FEDERATION_INSECURE_PLAINTEXT: "false", GRPC_HOST: "192.0.2.1" })).rejects.toThrow(
      /FEDERATION_TLS_CERT_FILE and FEDERATION_TLS_KEY_FILE/,
    );
    a.logs.length = 0;
    await a.start({ FEDERATION_INSECURE_PLAINTEXT: "false" });
    expect(lines().filter((l) => ["warn", "error", "fatal"].includes(l.level))).toEqual([]);
    expect(lines().some((l) => /loopback only/.test(l.msg))).toBe(true);
    const envelope = fanOutEnvelope(A, B, new Uint8Array([3]));
    await a.publishOutbound(envelope, toHex(envelope.envelopeId));
    await eventually(() => net.node(B).fanOuts.some((m) => m.id === toHex(envelope.envelopeId)), {
      timeoutMs: 20_000,
      message: "delivery on loopback",
    });
  });
});
