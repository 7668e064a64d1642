import { generateKeyPairSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeStatusDetails, encodeStatusDetails } from "./error-detail.js";
import { auth, common, delivery, events, federation } from "./index.js";
import { decodeTbs, requestHeader, rpcLabel, signTbs, type TbsSigner } from "./signing.js";

const key = generateKeyPairSync("ed25519");
const signer: TbsSigner = (label, tbs) =>
  new Uint8Array(sign(null, Buffer.concat([Buffer.from(`Phoenix${label}`), tbs]), key.privateKey));
function verifies(label: string, signed: common.Signed): boolean {
  return verify(
    null,
    Buffer.concat([Buffer.from(`Phoenix${label}`), signed.tbs]),
    key.publicKey,
    signed.signature,
  );
}

const userId: common.UserId = { uuid: new Uint8Array(16).fill(0xaa), domain: "alpha.example" };
const groupId: common.QualifiedGroupId = { uuid: new Uint8Array(16).fill(0x17), domain: "alpha.example" };

describe("signed requests", () => {
  const label = rpcLabel(auth.AuthServiceService.deleteUser);

  async function deleteUserRequest(): Promise<{ tbs: auth.DeleteUserTbs; request: auth.DeleteUserRequest }> {
    const sender = {
      $case: "client" as const,
      value: { user: userId, clientUuid: new Uint8Array(16).fill(1) },
    };
    const tbs: auth.DeleteUserTbs = { header: requestHeader(label, sender), userId };
    return { tbs, request: { signed: await signTbs(auth.DeleteUserTbs, tbs, signer) } };
  }

  it("keeps the signed bytes through encode/decode of the request and the tbs decodes back", async () => {
    const { tbs, request } = await deleteUserRequest();
    const wire = auth.DeleteUserRequest.encode(request).finish();
    const received = auth.DeleteUserRequest.decode(wire);
    expect(received.signed?.tbs).toEqual(request.signed?.tbs);
    expect(received.signed && verifies(label, received.signed)).toBe(true);
    const decoded = received.signed ? decodeTbs(auth.DeleteUserTbs, received.signed) : undefined;
    expect(decoded).toEqual(tbs);
    expect(decoded?.header?.label).toBe("phoenix.auth.v1.AuthService/DeleteUser");
    expect(decoded?.header?.requestId).toHaveLength(16);
  });

  it("verifies tbs bytes this SDK cannot re-encode (unknown fields from a newer client)", async () => {
    const { tbs } = await deleteUserRequest();
    // A newer client adds field 15 to the tbs; an older server decodes and would drop it.
    const newer = new Uint8Array([...auth.DeleteUserTbs.encode(tbs).finish(), 0x7a, 0x02, 0x68, 0x69]);
    const signed: common.Signed = { tbs: newer, signature: await signer(label, newer) };
    const received = auth.DeleteUserRequest.decode(auth.DeleteUserRequest.encode({ signed }).finish());
    expect(received.signed && verifies(label, received.signed)).toBe(true);
    // Re-encoding the decoded tbs loses the field: that is why signatures cover the carried bytes.
    const reencoded = auth.DeleteUserTbs.encode(decodeTbs(auth.DeleteUserTbs, signed)).finish();
    expect(verifies(label, { tbs: reencoded, signature: signed.signature })).toBe(false);
  });

  it("rejects a signature made for another RPC's label", async () => {
    const { request } = await deleteUserRequest();
    const signed = request.signed as common.Signed;
    expect(verifies(rpcLabel(auth.AuthServiceService.deleteClient), signed)).toBe(false);
  });

  it("refuses to sign a tbs without a header label", async () => {
    await expect(signTbs(auth.DeleteUserTbs, { header: undefined, userId }, signer)).rejects.toThrow(/label/);
  });

  it("keeps the signed bytes and the EAR key through the proto3 JSON mapping (REST)", async () => {
    const sender = { $case: "leafIndex" as const, value: 3 };
    const tbs: delivery.SendMessageTbs = {
      header: requestHeader(rpcLabel(delivery.DeliveryServiceService.sendMessage), sender),
      groupId,
      message: new Uint8Array([0, 1, 0, 2, 0xff]),
      suppressNotifications: false,
    };
    const request: delivery.SendMessageRequest = {
      signed: await signTbs(delivery.SendMessageTbs, tbs, signer),
      groupStateEarKey: new Uint8Array(32).fill(0x42),
    };
    const json = JSON.parse(JSON.stringify(delivery.SendMessageRequest.toJSON(request)));
    const back = delivery.SendMessageRequest.fromJSON(json);
    expect(back.signed?.tbs).toEqual(request.signed?.tbs);
    expect(back.groupStateEarKey).toEqual(request.groupStateEarKey);
    expect(back.signed && decodeTbs(delivery.SendMessageTbs, back.signed).header?.sender).toEqual(sender);
  });
});

describe("bus events", () => {
  const payload: common.QueuePayload = {
    timestamp: new Date("2026-01-02T03:04:05.678Z"),
    content: { $case: "mlsMessage", value: new Uint8Array([0, 1, 0, 3, 9, 9, 9]) },
  };
  const payloadBytes = common.QueuePayload.encode(payload).finish();
  const fanOut: events.FanOut = {
    fanOutId: new Uint8Array(16).fill(5),
    groupId,
    recipients: [
      { domain: "alpha.example", sealedQueueConfig: new Uint8Array([1, 2, 3]) },
      { domain: "beta.example", sealedQueueConfig: new Uint8Array([4, 5, 6]) },
    ],
    payload: payloadBytes,
    suppressNotifications: true,
  };

  it("round-trips a fan-out with its payload bytes unchanged", () => {
    const received = events.FanOut.decode(events.FanOut.encode(fanOut).finish());
    expect(received.payload).toEqual(payloadBytes);
    expect(received.recipients).toEqual(fanOut.recipients);
    expect(received.suppressNotifications).toBe(true);
    expect(common.QueuePayload.decode(received.payload)).toEqual(payload);
  });

  it("carries a fan-out inside a signed federation envelope without changing it", async () => {
    const envelope: events.FederationEnvelope = {
      envelopeId: new Uint8Array(16).fill(6),
      sourceDomain: "alpha.example",
      destinationDomain: "beta.example",
      content: { $case: "fanOut", value: { ...fanOut, recipients: fanOut.recipients.slice(1) } },
    };
    const label = rpcLabel(federation.FederationServiceService.deliverFanOut);
    const tbs: federation.DeliverFanOutTbs = {
      header: requestHeader(label, { $case: "domain", value: "alpha.example" }),
      envelope,
    };
    const request: federation.DeliverFanOutRequest = {
      signed: await signTbs(federation.DeliverFanOutTbs, tbs, signer),
    };
    const received = federation.DeliverFanOutRequest.decode(
      federation.DeliverFanOutRequest.encode(request).finish(),
    );
    expect(received.signed && verifies(label, received.signed)).toBe(true);
    const inner = received.signed
      ? decodeTbs(federation.DeliverFanOutTbs, received.signed).envelope
      : undefined;
    expect(inner?.content?.$case).toBe("fanOut");
    expect(inner?.content?.$case === "fanOut" && inner.content.value.payload).toEqual(payloadBytes);
  });

  it("round-trips a queue-deleted report", () => {
    const report: events.QueueDeleted = {
      eventId: new Uint8Array(16).fill(7),
      groupId,
      recipient: { domain: "alpha.example", sealedQueueConfig: new Uint8Array([1, 2, 3]) },
      reportedAt: new Date("2026-02-03T00:00:00.000Z"),
    };
    expect(events.QueueDeleted.decode(events.QueueDeleted.encode(report).finish())).toEqual(report);
  });
});

describe("error details", () => {
  it("round-trips pending proposals through the google.rpc.Status trailer encoding", () => {
    const detail: common.ErrorDetail = {
      reason: common.ErrorReason.ERROR_REASON_PENDING_PROPOSALS,
      detail: {
        $case: "pendingProposals",
        value: {
          proposalRefs: [new Uint8Array([1, 2])],
          proposals: [new Uint8Array([3, 4, 5])],
          requiredRemovals: [{ leafIndex: 4, reason: common.RemovalReason.REMOVAL_REASON_INACTIVE }],
        },
      },
    };
    const bytes = encodeStatusDetails(9, "GroupOperation: commit omits 1 pending proposal", detail);
    const { status, detail: decoded } = decodeStatusDetails(bytes);
    expect(status.code).toBe(9);
    expect(status.message).toBe("GroupOperation: commit omits 1 pending proposal");
    expect(status.details[0]?.typeUrl).toBe("type.googleapis.com/phoenix.common.v1.ErrorDetail");
    expect(decoded).toEqual(detail);
  });

  it("finds no detail in a status that carries none", () => {
    expect(decodeStatusDetails(new Uint8Array([8, 5])).detail).toBeUndefined();
  });
});
