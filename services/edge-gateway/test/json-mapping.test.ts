// The gateway parses and prints JSON with @bufbuild/protobuf (strict proto3 JSON mapping);
// clients built on the generated ts-proto code use its toJSON/fromJSON. These checks pin that
// both speak the same canonical mapping: bytes as base64, 64-bit integers as strings, enums by
// name, timestamps as RFC 3339, oneofs as their member field.
import { fromBinary, fromJsonString, toBinary, toJson } from "@bufbuild/protobuf";
import { common, queue } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { messageDesc } from "../src/contracts.js";

interface TsProtoType<T> {
  encode(value: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
  toJSON(value: T): unknown;
  fromJSON(json: unknown): T;
}

function roundTrip<T>(typeName: string, type: TsProtoType<T>, value: T) {
  const desc = messageDesc(typeName);
  const expected = type.encode(value).finish();
  // client JSON (ts-proto) → gateway → binary for the upstream
  const clientJson = JSON.stringify(type.toJSON(value));
  const forwarded = toBinary(desc, fromJsonString(desc, clientJson));
  expect(Buffer.from(forwarded).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
  // upstream binary → gateway JSON → client (ts-proto)
  const gatewayJson = toJson(desc, fromBinary(desc, expected));
  const back = type.fromJSON(JSON.parse(JSON.stringify(gatewayJson)));
  expect(Buffer.from(type.encode(back).finish()).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
  return { clientJson: JSON.parse(clientJson) as unknown, gatewayJson };
}

describe("ts-proto JSON and the gateway's proto3 JSON agree", () => {
  it("enums by name, uint64 as strings, oneof members", () => {
    const { gatewayJson } = roundTrip("phoenix.common.v1.ErrorDetail", common.ErrorDetail, {
      reason: common.ErrorReason.ERROR_REASON_WRONG_EPOCH,
      detail: { $case: "wrongEpoch", value: { currentEpoch: 2n ** 63n + 5n, requestEpoch: 1n } },
    });
    expect(gatewayJson).toEqual({
      reason: "ERROR_REASON_WRONG_EPOCH",
      wrongEpoch: { currentEpoch: "9223372036854775813", requestEpoch: "1" },
    });
  });

  it("timestamps as RFC 3339, bytes as base64, nested oneof with bytes", () => {
    const { gatewayJson, clientJson } = roundTrip("phoenix.common.v1.RequestHeader", common.RequestHeader, {
      label: "phoenix.queue.v1.QueueService/Dequeue",
      timestamp: new Date("2025-03-01T12:34:56.789Z"),
      requestId: new Uint8Array([0xfb, 0xff, 0x00, 0x10]),
      sender: { $case: "qsClientId", value: new Uint8Array(16).fill(7) },
    });
    expect(gatewayJson).toMatchObject({ timestamp: "2025-03-01T12:34:56.789Z", requestId: "+/8AEA==" });
    expect(clientJson).toMatchObject({ timestamp: "2025-03-01T12:34:56.789Z", requestId: "+/8AEA==" });
  });

  it("repeated messages with 64-bit sequence numbers", () => {
    roundTrip("phoenix.queue.v1.DequeueResponse", queue.DequeueResponse, {
      messages: [
        { sequenceNumber: 1n, ciphertext: new Uint8Array([1]) },
        { sequenceNumber: 18446744073709551615n, ciphertext: new Uint8Array(300).fill(9) },
      ],
      remaining: 42n,
    });
  });

  it("bidi stream requests (listen init and ack)", () => {
    roundTrip("phoenix.queue.v1.ListenRequest", queue.ListenRequest, {
      request: { $case: "ack", value: { upToSequenceNumber: 77n } },
    });
    roundTrip("phoenix.queue.v1.ListenRequest", queue.ListenRequest, {
      request: {
        $case: "init",
        value: { tbs: new Uint8Array([1, 2, 3]), signature: new Uint8Array(64).fill(1) },
      },
    });
  });
});
