import { status } from "@grpc/grpc-js";
import { SigningKey, toHex } from "@phoenix/crypto";
import { federation, rpcLabel } from "@phoenix/proto";
import { eventually, fanOutEnvelope } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";
const C = "c.test";
const DELIVER = rpcLabel(federation.FederationServiceService.deliverFanOut);

describe("inbound authentication and policy", () => {
  let net: Network;

  beforeAll(async () => {
    // B federates with A only; C is on B's denylist (and B runs an allowlist anyway).
    net = await Network.start([A, B, C], {
      env: { [B]: { FEDERATION_DENIED_DOMAINS: C, LOG_LEVEL: "warn" } },
    });
  });
  afterAll(async () => {
    await net?.stop();
  });

  function keyOf(domain: string): SigningKey {
    const key = net.node(domain).running?.gateway.context.keys.active();
    if (!key) throw new Error(`${domain} has no key`);
    return key.signingKey;
  }

  it("a request signed by a key that is not A's is refused with UNAUTHENTICATED", async () => {
    const client = net.federationClient(B);
    const envelope = fanOutEnvelope(A, B, new Uint8Array([1]));
    const signed = await signFederationRequest(
      federation.DeliverFanOutTbs,
      DELIVER,
      A,
      SigningKey.generate(),
      {
        envelope,
      },
    );
    await expect(client.deliverFanOut({ signed })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    const tampered = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, A, keyOf(A), {
      envelope,
    });
    tampered.signature = tampered.signature.slice();
    tampered.signature.set([(tampered.signature[0] ?? 0) ^ 1], 0);
    await expect(client.deliverFanOut({ signed: tampered })).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    expect(net.node(B).fanOuts.some((m) => m.id === toHex(envelope.envelopeId))).toBe(false);
    const refused = await net.node(B).running?.gateway.metrics.inboundRefused.get();
    expect(refused?.values.find((v) => v.labels.code === "UNAUTHENTICATED")?.value).toBeGreaterThanOrEqual(2);
  });

  it("a stale, a future-dated and a replayed request are refused with UNAUTHENTICATED", async () => {
    const client = net.federationClient(B);
    const key = keyOf(A);
    const stale = await signFederationRequest(
      federation.DeliverFanOutTbs,
      DELIVER,
      A,
      key,
      { envelope: fanOutEnvelope(A, B, new Uint8Array([2])) },
      new Date(Date.now() - 10 * 60_000),
    );
    await expect(client.deliverFanOut({ signed: stale })).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      statusMessage: expect.stringMatching(/ago/),
    });
    const future = await signFederationRequest(
      federation.DeliverFanOutTbs,
      DELIVER,
      A,
      key,
      { envelope: fanOutEnvelope(A, B, new Uint8Array([2])) },
      new Date(Date.now() + 10 * 60_000),
    );
    await expect(client.deliverFanOut({ signed: future })).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });

    const envelope = fanOutEnvelope(A, B, new Uint8Array([3]));
    const once = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, A, key, { envelope });
    await client.deliverFanOut({ signed: once });
    await expect(client.deliverFanOut({ signed: once })).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      statusMessage: expect.stringMatching(/already used/),
    });
  });

  it("a signature made for another RPC's label does not authenticate this one", async () => {
    const client = net.federationClient(B);
    const forwardLabel = rpcLabel(federation.FederationServiceService.forward);
    const signed = await signFederationRequest(federation.DeliverFanOutTbs, forwardLabel, A, keyOf(A), {
      envelope: fanOutEnvelope(A, B, new Uint8Array([4])),
    });
    await expect(client.deliverFanOut({ signed })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });

  it("an envelope whose source is not the signer, or not addressed to B, is INVALID_ARGUMENT", async () => {
    const client = net.federationClient(B);
    const spoofed = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, A, keyOf(A), {
      envelope: fanOutEnvelope(C, B, new Uint8Array([5])),
    });
    await expect(client.deliverFanOut({ signed: spoofed })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
    const elsewhere = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, A, keyOf(A), {
      envelope: fanOutEnvelope(A, C, new Uint8Array([5])),
    });
    await expect(client.deliverFanOut({ signed: elsewhere })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
  });

  it("a denied peer is refused with PERMISSION_DENIED, however well it signs", async () => {
    const client = net.federationClient(B);
    const envelope = fanOutEnvelope(C, B, new Uint8Array([6]));
    const signed = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, C, keyOf(C), {
      envelope,
    });
    await expect(client.deliverFanOut({ signed })).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
      statusMessage: expect.stringMatching(/c\.test .*denylisted/),
    });
    const refusals = net
      .node(B)
      .logs.map((line) => JSON.parse(line) as { msg?: string; peer?: string })
      .filter((entry) => entry.msg === "refused a federation request from a denied peer");
    expect(refusals.map((entry) => entry.peer)).toContain(C);
    // And B's own services cannot reach C through B's gateway either.
    const proxy = net.proxyClient(B);
    await expect(
      proxy.proxy({
        destinationDomain: C,
        method: "/phoenix.auth.v1.AuthService/GetAsCredentials",
        request: new Uint8Array(),
      }),
    ).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
  });

  it("GetDomainKeys serves the domain's current key, which verifies its signatures", async () => {
    const answer = await net.federationClient(A).getDomainKeys({});
    expect(answer.domain).toBe(A);
    expect(answer.keys.map((k) => toHex(k.publicKey))).toContain(toHex(keyOf(A).publicKey));
  });
});

describe("per-peer rate limit", () => {
  let net: Network;

  beforeAll(async () => {
    net = await Network.start([A, B], {
      env: { [B]: { FEDERATION_PEER_RATE: "1", FEDERATION_PEER_BURST: "3" } },
    });
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("requests beyond the peer's burst get RESOURCE_EXHAUSTED", async () => {
    const client = net.federationClient(B);
    const key = net.node(A).running?.gateway.context.keys.active()?.signingKey;
    if (!key) throw new Error("A has no key");
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const signed = await signFederationRequest(federation.DeliverFanOutTbs, DELIVER, A, key, {
        envelope: fanOutEnvelope(A, B, new Uint8Array([i])),
      });
      codes.push(
        await client.deliverFanOut({ signed }).then(
          () => status.OK,
          (err: { code: number }) => err.code,
        ),
      );
    }
    expect(codes.filter((c) => c === status.OK).length).toBeGreaterThanOrEqual(3);
    expect(codes).toContain(status.RESOURCE_EXHAUSTED);
  });
});

describe("key rotation", () => {
  let net: Network;

  beforeAll(async () => {
    net = await Network.start([A, B], {
      env: {
        [A]: {
          FEDERATION_KEY_ROTATION: "1500ms",
          FEDERATION_KEY_OVERLAP: "1s",
          FEDERATION_KEY_REFRESH: "100ms",
        },
      },
    });
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("B picks up A's new key when a signature matches none of its cached keys", async () => {
    const a = net.node(A);
    const b = net.node(B);
    const first = fanOutEnvelope(A, B, new Uint8Array([1]));
    await a.publishOutbound(first, toHex(first.envelopeId));
    await eventually(() => b.fanOuts.some((m) => m.id === toHex(first.envelopeId)), {
      timeoutMs: 20_000,
      message: "delivery with the first key",
    });
    const firstKey = toHex(a.running?.gateway.context.keys.active()?.keyId ?? new Uint8Array());
    await eventually(
      () => toHex(a.running?.gateway.context.keys.active()?.keyId ?? new Uint8Array()) !== firstKey,
      { timeoutMs: 20_000, message: "A's rotation" },
    );
    const second = fanOutEnvelope(A, B, new Uint8Array([2]));
    await a.publishOutbound(second, toHex(second.envelopeId));
    await eventually(() => b.fanOuts.some((m) => m.id === toHex(second.envelopeId)), {
      timeoutMs: 20_000,
      message: "delivery with the new key",
    });
    const cached = await b.running?.gateway.context.peerKeys.keysFor(A);
    expect(cached?.map((k) => toHex(k.bytes))).toContain(
      toHex(a.running?.gateway.context.keys.active()?.publicKey ?? new Uint8Array()),
    );
  });
});
