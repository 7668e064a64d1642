import { common, queue } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, type RpcError, UnauthenticatedError } from "../errors/rpc-errors.js";
import { checkRequestHeader, openSignedRequest } from "./authenticator.js";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const window = { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 };
const expected = { label: "phoenix.queue.v1.QueueService/Dequeue", now: NOW, window };

function header(overrides: Partial<common.RequestHeader> = {}): common.RequestHeader {
  return {
    label: expected.label,
    timestamp: new Date(NOW - 1_000),
    requestId: new Uint8Array(16).fill(7),
    sender: { $case: "qsClientId", value: new Uint8Array(16) },
    ...overrides,
  };
}

function refusal(fn: () => unknown): { error: RpcError; reason: common.ErrorReason | undefined } {
  try {
    fn();
  } catch (e) {
    const error = e as RpcError;
    const detail = error.details[0];
    return { error, reason: detail ? common.ErrorDetail.decode(detail.value).reason : undefined };
  }
  throw new Error("expected a refusal");
}

describe("checkRequestHeader", () => {
  it("accepts a header of this RPC inside the window", () => {
    const checked = checkRequestHeader(header(), expected);
    expect(checked.requestId).toEqual(new Uint8Array(16).fill(7));
    expect(checked.timestamp.getTime()).toBe(NOW - 1_000);
  });

  it("refuses another RPC's label with WRONG_LABEL, naming both", () => {
    const { error, reason } = refusal(() =>
      checkRequestHeader(header({ label: "phoenix.queue.v1.QueueService/DeleteClient" }), expected),
    );
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(reason).toBe(common.ErrorReason.ERROR_REASON_WRONG_LABEL);
    expect(error.message).toContain("DeleteClient");
    expect(error.message).toContain(expected.label);
  });

  it("refuses stale and future timestamps with STALE_TIMESTAMP", () => {
    for (const ts of [NOW - 5 * 60_000 - 1, NOW + 60_001]) {
      const { error, reason } = refusal(() =>
        checkRequestHeader(header({ timestamp: new Date(ts) }), expected),
      );
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect(reason).toBe(common.ErrorReason.ERROR_REASON_STALE_TIMESTAMP);
    }
    expect(() =>
      checkRequestHeader(header({ timestamp: new Date(NOW - 5 * 60_000) }), expected),
    ).not.toThrow();
  });

  it("refuses a missing header, a short request id or a missing timestamp as MALFORMED", () => {
    for (const bad of [
      undefined,
      header({ requestId: new Uint8Array(15) }),
      header({ timestamp: undefined }),
    ]) {
      const { error, reason } = refusal(() => checkRequestHeader(bad, expected));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(reason).toBe(common.ErrorReason.ERROR_REASON_MALFORMED);
    }
  });
});

describe("openSignedRequest", () => {
  const tbs = queue.DequeueTbs.encode({
    header: header(),
    sequenceNumberStart: 3n,
    maxMessages: 10,
  }).finish();

  it("decodes the tbs and checks its header", () => {
    const opened = openSignedRequest({ tbs, signature: new Uint8Array(64) }, queue.DequeueTbs, expected);
    expect(opened.tbs.sequenceNumberStart).toBe(3n);
    expect(opened.header.label).toBe(expected.label);
  });

  it("names the field of a missing request, a bad signature length or undecodable bytes", () => {
    expect(
      refusal(() => openSignedRequest(undefined, queue.DequeueTbs, { ...expected, field: "req" })).error
        .message,
    ).toBe("req: missing");
    expect(
      refusal(() => openSignedRequest({ tbs, signature: new Uint8Array(10) }, queue.DequeueTbs, expected))
        .error.message,
    ).toBe("signed.signature: must be 64 bytes");
    const garbage = { tbs: new Uint8Array([0xff, 0xff, 0xff]), signature: new Uint8Array(64) };
    expect(refusal(() => openSignedRequest(garbage, queue.DequeueTbs, expected)).reason).toBe(
      common.ErrorReason.ERROR_REASON_MALFORMED,
    );
  });
});
