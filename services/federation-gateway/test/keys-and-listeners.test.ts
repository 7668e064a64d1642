import { status } from "@grpc/grpc-js";
import { SigningKey, signatureKeyId, toHex } from "@phoenix/crypto";
import { federation } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";

describe("operator-pinned key, listeners and malformed requests", () => {
  const first = SigningKey.generate();
  const second = SigningKey.generate();
  let net: Network;

  beforeAll(async () => {
    net = await Network.start([A, B], {
      env: { [A]: { FEDERATION_SIGNING_KEY: toHex(first.exportSeed()) } },
    });
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("serves the pinned key; replacing it keeps the old one valid for the overlap and signs with the new one", async () => {
    const client = net.federationClient(A);
    const before = await client.getDomainKeys({});
    expect(before.keys.map((k) => toHex(k.keyId))).toEqual([toHex(signatureKeyId(first.verifyingKey))]);
    const a = net.node(A);
    await a.stopGateway();
    await a.start({ FEDERATION_SIGNING_KEY: toHex(second.exportSeed()) });
    const after = await client.getDomainKeys({});
    expect(after.keys.map((k) => toHex(k.publicKey)).sort()).toEqual(
      [toHex(first.publicKey), toHex(second.publicKey)].sort(),
    );
    expect(toHex(a.running?.gateway.context.keys.active()?.publicKey ?? new Uint8Array())).toBe(
      toHex(second.publicKey),
    );
  });

  it("the internal Proxy service is not reachable on the public listener", async () => {
    const channel = createChannel(`127.0.0.1:${net.node(A).port}`);
    try {
      const proxy = createServiceClient(federation.FederationProxyServiceService, channel);
      await expect(
        proxy.proxy({
          destinationDomain: B,
          method: "/phoenix.auth.v1.AuthService/GetAsCredentials",
          request: new Uint8Array(),
        }),
      ).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
    } finally {
      channel.close();
    }
  });

  it("requests without a signed part or with garbage in it are INVALID_ARGUMENT", async () => {
    const client = net.federationClient(B);
    await expect(client.deliverFanOut({ signed: undefined })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    await expect(
      client.reportQueueDeleted({
        signed: { tbs: new Uint8Array([0xff, 0xff, 0xff]), signature: new Uint8Array(64) },
      }),
    ).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(
      client.forward({ signed: { tbs: new Uint8Array([10, 0]), signature: new Uint8Array(64) } }),
    ).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it("a proxied request to a peer whose gateway is down is UNAVAILABLE", async () => {
    const b = net.node(B);
    await b.stopGateway();
    try {
      await expect(
        net.proxyClient(A).proxy({
          destinationDomain: B,
          method: "/phoenix.auth.v1.AuthService/GetAsCredentials",
          request: new Uint8Array(),
        }),
      ).rejects.toMatchObject({ code: status.UNAVAILABLE });
    } finally {
      await b.start();
    }
  });
});
