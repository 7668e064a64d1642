import { readFileSync } from "node:fs";
import { credentials, status } from "@grpc/grpc-js";
import { toHex } from "@phoenix/crypto";
import { federation, rpcLabel } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { eventually, fanOutEnvelope, makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
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
