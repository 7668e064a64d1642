import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { connect, createServer as createTlsServer } from "node:tls";
import { credentials, status } from "@grpc/grpc-js";
import { toHex } from "@phoenix/crypto";
import { federation, rpcLabel } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { eventually, fanOutEnvelope, makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { peerCredentials } from "../src/outbound/tls.js";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";
const C = "c.test";
const DELIVER = rpcLabel(federation.FederationServiceService.deliverFanOut);

function tlsClient(port: number, ca: string, domain: string, clientCert?: { cert: string; key: string }) {
  const creds = credentials.createSsl(
    readFileSync(ca),
    clientCert ? readFileSync(clientCert.key) : null,
    clientCert ? readFileSync(clientCert.cert) : null,
  );
  const channel = createChannel(`127.0.0.1:${port}`, {
    credentials: creds,
    channelOptions: { "grpc.ssl_target_name_override": domain, "grpc.default_authority": domain },
  });
  return { channel, client: createServiceClient(federation.FederationServiceService, channel) };
}

async function expectDelivery(net: Network): Promise<void> {
  const envelope = fanOutEnvelope(A, B, new Uint8Array([1]));
  await net.node(A).publishOutbound(envelope, toHex(envelope.envelopeId));
  await eventually(() => net.node(B).fanOuts.some((m) => m.id === toHex(envelope.envelopeId)), {
    timeoutMs: 20_000,
    message: "delivery over TLS",
  });
}

describe("TLS between gateways", () => {
  let tls: TestTlsFiles;
  let other: TestTlsFiles;
  let net: Network;

  beforeAll(async () => {
    tls = makeTestTls([A, B, "evil.test"]);
    other = makeTestTls([A], { ca: "other-ca" });
    net = await Network.start([A, B], { tls });
  });
  afterAll(async () => {
    await net?.stop();
    tls?.remove();
    other?.remove();
  });

  it("delivers A→B over TLS, and B refuses plaintext", async () => {
    await expectDelivery(net);
    const plain = net.federationClient(B);
    await expect(plain.getDomainKeys({}, { deadlineMs: 2000 })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
    });
  });

  it("A does not trust a B gateway whose certificate is not valid for b.test", async () => {
    const b = net.node(B);
    await b.stopGateway();
    await b.start({
      FEDERATION_TLS_CERT_FILE: tls.certFile("evil.test"),
      FEDERATION_TLS_KEY_FILE: tls.keyFile("evil.test"),
    });
    const peer = await net.node(A).running?.gateway.context.peers.get(B);
    await expect(peer?.getDomainKeys({}, { deadlineMs: 2000 })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
    });
    // The same B with its own certificate is trusted again.
    await b.stopGateway();
    await b.start();
    await expectDelivery(net);
  });
});

/** A TLS handshake (ALPN h2, like a gRPC peer) limited to `maxVersion`: the version agreed or the error. */
function handshake(
  port: number,
  ca: string,
  domain: string,
  maxVersion: "TLSv1.2" | "TLSv1.3",
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      servername: domain,
      ca: readFileSync(ca),
      maxVersion,
      ALPNProtocols: ["h2"],
      timeout: 10_000,
    });
    const done = (result: string) => {
      resolve(result);
      socket.destroy();
    };
    socket.once("secureConnect", () => done(socket.getProtocol() ?? "none"));
    socket.once("timeout", () => done("timeout"));
    socket.once("error", (error: NodeJS.ErrnoException) => done(`error ${error.code ?? error.message}`));
  });
}

describe("TLS version of federation", () => {
  let tls: TestTlsFiles;
  let net: Network;

  beforeAll(async () => {
    tls = makeTestTls([A, B]);
    net = await Network.start([A, B], { tls });
  });
  afterAll(async () => {
    await net?.stop();
    tls?.remove();
  });

  it("the listener speaks TLS 1.3 and refuses a peer that offers TLS 1.2 at most", async () => {
    const port = net.node(B).port;
    expect(await handshake(port, tls.caFile, B, "TLSv1.3")).toBe("TLSv1.3");
    expect(await handshake(port, tls.caFile, B, "TLSv1.2")).toMatch(/^error .*PROTOCOL_VERSION/);
  });

  it("calls to peers refuse a server that offers TLS 1.2 at most", async () => {
    // A bare TLS server standing in for a peer: what matters is whether the handshake completes.
    const serve = async (maxVersion: "TLSv1.2" | "TLSv1.3") => {
      const events: string[] = [];
      const server = createTlsServer(
        {
          cert: readFileSync(tls.certFile(B)),
          key: readFileSync(tls.keyFile(B)),
          maxVersion,
          ALPNProtocols: ["h2"],
        },
        (socket) => {
          events.push(`connected ${socket.getProtocol()}`);
          socket.destroy();
        },
      );
      server.on("tlsClientError", (error: NodeJS.ErrnoException) => events.push(`refused ${error.code}`));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const channel = createChannel(`127.0.0.1:${(server.address() as AddressInfo).port}`, {
        credentials: peerCredentials({ ca: readFileSync(tls.caFile), mutual: false, plaintext: false }),
        channelOptions: { "grpc.ssl_target_name_override": B, "grpc.default_authority": B },
      });
      const client = createServiceClient(federation.FederationServiceService, channel);
      try {
        await expect(client.getDomainKeys({}, { deadlineMs: 2000 })).rejects.toMatchObject({
          code: expect.any(Number),
        });
        await eventually(() => events.length > 0, { timeoutMs: 5000, message: "a handshake attempt" });
        return events[0];
      } finally {
        channel.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    };
    expect(await serve("TLSv1.3")).toBe("connected TLSv1.3");
    expect(await serve("TLSv1.2")).toBe("refused ERR_SSL_UNSUPPORTED_PROTOCOL");
  });
});

describe("mutual TLS between gateways", () => {
  let tls: TestTlsFiles;
  let other: TestTlsFiles;
  let net: Network;

  beforeAll(async () => {
    // c.test: a certificate of the same CA, for a domain that is not the signer.
    tls = makeTestTls([A, B, C]);
    other = makeTestTls([A], { ca: "other-ca" });
    net = await Network.start([A, B], { tls, mutualTls: true });
  });
  afterAll(async () => {
    await net?.stop();
    tls?.remove();
    other?.remove();
  });

  it("gateways present their certificates and deliver", async () => {
    await expectDelivery(net);
  });

  it("a client without a certificate, or with one from an unknown CA, is refused", async () => {
    const port = net.node(B).port;
    const anonymous = tlsClient(port, tls.caFile, B);
    const stranger = tlsClient(port, tls.caFile, B, { cert: other.certFile(A), key: other.keyFile(A) });
    const member = tlsClient(port, tls.caFile, B, { cert: tls.certFile(A), key: tls.keyFile(A) });
    try {
      await expect(anonymous.client.getDomainKeys({}, { deadlineMs: 2000 })).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
      await expect(stranger.client.getDomainKeys({}, { deadlineMs: 2000 })).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
      expect((await member.client.getDomainKeys({})).domain).toBe(B);
    } finally {
      for (const c of [anonymous, stranger, member]) c.channel.close();
    }
  });

  it("refuses a request signed by one domain over another domain's client certificate", async () => {
    const port = net.node(B).port;
    const key = net.node(A).running?.gateway.context.keys.active()?.signingKey;
    if (key === undefined) throw new Error("A has no key");
    const asC = tlsClient(port, tls.caFile, B, { cert: tls.certFile(C), key: tls.keyFile(C) });
    const asA = tlsClient(port, tls.caFile, B, { cert: tls.certFile(A), key: tls.keyFile(A) });
    try {
      // A's genuine signature, carried over c.test's (valid, same-CA) certificate.
      const envelope = fanOutEnvelope(A, B, new Uint8Array([7]));
      const signed = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, A, key, { envelope });
      await expect(asC.client.deliverFanOut({ signed }, { deadlineMs: 5000 })).rejects.toMatchObject({
        code: status.PERMISSION_DENIED,
        statusMessage: expect.stringMatching(/DNS:c\.test.*not valid for a\.test/),
      });
      expect(net.node(B).fanOuts.some((m) => m.id === toHex(envelope.envelopeId))).toBe(false);
      // The same signed request over A's own certificate is accepted.
      await asA.client.deliverFanOut({ signed }, { deadlineMs: 5000 });
      await eventually(() => net.node(B).fanOuts.some((m) => m.id === toHex(envelope.envelopeId)), {
        timeoutMs: 20_000,
        message: "delivery over A's certificate",
      });
    } finally {
      for (const c of [asC, asA]) c.channel.close();
    }
  });
});
