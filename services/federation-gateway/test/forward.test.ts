import { status } from "@grpc/grpc-js";
import { auth, common, federation, rpcLabel } from "@phoenix/proto";
import { decodeRichStatus, encodeRichStatus, errorDetail } from "@phoenix/runtime/errors";
import { GrpcCallError } from "@phoenix/runtime/grpc";
import { freePort } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signFederationRequest } from "../src/domain/signing.js";
import { type Answer, FakeUpstream } from "./support/fake-upstream.js";
import { Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";
const GET_AS_CREDENTIALS = "/phoenix.auth.v1.AuthService/GetAsCredentials";
const GET_CONNECTION_PACKAGES = "/phoenix.auth.v1.AuthService/GetConnectionPackages";
const SEND_MESSAGE = "/phoenix.delivery.v1.DeliveryService/SendMessage";
const CHECK_HANDLE = "/phoenix.auth.v1.AuthService/CheckHandleExists";
const REGISTER_USER = "/phoenix.auth.v1.AuthService/RegisterUser";

const canned = auth.GetAsCredentialsResponse.encode(
  auth.GetAsCredentialsResponse.fromPartial({ asCredentials: [new Uint8Array([1, 2, 3])] }),
).finish();
const epochDetail = errorDetail(
  common.ErrorDetail.fromPartial({
    detail: { $case: "wrongEpoch", value: { currentEpoch: 42n, requestEpoch: 41n } },
  }),
);

describe("Forward / Proxy of client requests", () => {
  let net: Network;
  let upstream: FakeUpstream;

  beforeAll(async () => {
    upstream = new FakeUpstream(
      new Map<string, Answer | "hang">([
        [GET_AS_CREDENTIALS, { response: canned }],
        [GET_CONNECTION_PACKAGES, { error: { code: status.NOT_FOUND, message: "no such user" } }],
        [
          SEND_MESSAGE,
          {
            error: {
              code: status.FAILED_PRECONDITION,
              message: "wrong epoch",
              details: encodeRichStatus({
                code: status.FAILED_PRECONDITION,
                message: "wrong epoch",
                details: [epochDetail],
              }),
            },
          },
        ],
        [CHECK_HANDLE, "hang"],
      ]),
    );
    const port = await upstream.start();
    net = await Network.start([A, B], {
      env: {
        [B]: {
          FEDERATION_AS_ADDRESS: `127.0.0.1:${port}`,
          FEDERATION_DS_ADDRESS: `127.0.0.1:${port}`,
          // Nothing listens here: the QS is "down".
          FEDERATION_QS_ADDRESS: `127.0.0.1:${await freePort()}`,
        },
      },
    });
  });
  afterAll(async () => {
    await net?.stop();
    upstream?.stop();
  });

  it("a proxied request reaches B's AS byte for byte, tagged with the origin domain, and its answer comes back unchanged", async () => {
    const request = auth.GetAsCredentialsRequest.encode({
      domain: B,
    } as auth.GetAsCredentialsRequest).finish();
    const answer = await net
      .proxyClient(A)
      .proxy({ destinationDomain: B, method: GET_AS_CREDENTIALS, request });
    expect(new Uint8Array(answer.response)).toEqual(canned);
    const call = upstream.calls.find((c) => c.path === GET_AS_CREDENTIALS);
    expect(call?.request).toEqual(request);
    expect(call?.metadata.get("phoenix-origin-domain")).toEqual([A]);
  });

  it("the upstream's status passes through unchanged: code, message and details", async () => {
    const proxy = net.proxyClient(A);
    const notFound = await proxy
      .proxy({ destinationDomain: B, method: GET_CONNECTION_PACKAGES, request: new Uint8Array([8, 1]) })
      .catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(GrpcCallError);
    expect(notFound).toMatchObject({ code: status.NOT_FOUND, statusMessage: "no such user" });

    const stale = await proxy
      .proxy({ destinationDomain: B, method: SEND_MESSAGE, request: new Uint8Array([10, 0]) })
      .catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: status.FAILED_PRECONDITION, statusMessage: "wrong epoch" });
    const details = (stale as GrpcCallError).details;
    expect(details).toHaveLength(1);
    expect(details[0]?.typeUrl).toBe("type.googleapis.com/phoenix.common.v1.ErrorDetail");
    expect(details[0]?.value).toEqual(epochDetail.value);
    const raw = (stale as GrpcCallError).metadata.get("grpc-status-details-bin")[0] as Uint8Array;
    expect(decodeRichStatus(raw).code).toBe(status.FAILED_PRECONDITION);
  });

  it("non-federated, unknown and local methods are refused before anything leaves A", async () => {
    const proxy = net.proxyClient(A);
    const before = upstream.calls.length;
    for (const [destinationDomain, method] of [
      [B, REGISTER_USER],
      [B, "/phoenix.auth.v1.AuthService/NoSuchMethod"],
      [A, GET_AS_CREDENTIALS],
      ["not a domain", GET_AS_CREDENTIALS],
    ] as const) {
      await expect(
        proxy.proxy({ destinationDomain, method, request: new Uint8Array() }),
      ).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
      });
    }
    expect(upstream.calls.length).toBe(before);
  });

  it("B refuses a signed Forward of a non-federated method with PERMISSION_DENIED", async () => {
    const key = net.node(A).running?.gateway.context.keys.active()?.signingKey;
    if (!key) throw new Error("A has no key");
    const before = upstream.calls.length;
    const signed = await signFederationRequest(
      federation.ForwardTbs,
      rpcLabel(federation.FederationServiceService.forward),
      A,
      key,
      { destinationDomain: B, method: REGISTER_USER, request: new Uint8Array() },
    );
    await expect(net.federationClient(B).forward({ signed })).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
    });
    expect(upstream.calls.length).toBe(before);
  });

  it("a target service that is down is UNAVAILABLE; a hanging one runs into the caller's deadline", async () => {
    const proxy = net.proxyClient(A);
    await expect(
      proxy.proxy({
        destinationDomain: B,
        method: "/phoenix.queue.v1.QueueService/FetchAddPackages",
        request: new Uint8Array(),
      }),
    ).rejects.toMatchObject({ code: status.UNAVAILABLE });
    await expect(
      proxy.proxy(
        { destinationDomain: B, method: CHECK_HANDLE, request: new Uint8Array() },
        { deadlineMs: 500 },
      ),
    ).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
  });
});
