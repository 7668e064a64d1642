import { status } from "@grpc/grpc-js";
import { common } from "@phoenix/proto";
import { decodeRichStatus } from "@phoenix/wire";
import { describe, expect, it } from "vitest";
import { malformedField, unauthenticatedFor } from "./phoenix-detail.js";
import { toGrpcStatus } from "./to-grpc-status.js";

describe("Phoenix error details", () => {
  it("a malformed field reaches the client as INVALID_ARGUMENT with reason and field violation", () => {
    const rpc = toGrpcStatus(malformedField("tbs.header.request_id", "must be 16 bytes"));
    expect(rpc.code).toBe(status.INVALID_ARGUMENT);
    expect(rpc.details).toBe("tbs.header.request_id: must be 16 bytes");
    const bin = rpc.metadata.get("grpc-status-details-bin")[0];
    const rich = decodeRichStatus(new Uint8Array(bin as Buffer));
    const detail = common.ErrorDetail.decode(rich.details[0]?.value ?? new Uint8Array());
    expect(detail.reason).toBe(common.ErrorReason.ERROR_REASON_MALFORMED);
    expect(detail.detail).toEqual({
      $case: "fieldViolation",
      value: { field: "tbs.header.request_id", description: "must be 16 bytes" },
    });
  });

  it("an unauthenticated refusal carries only its reason", () => {
    const error = unauthenticatedFor(
      common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
      "request id already used",
    );
    expect(toGrpcStatus(error).code).toBe(status.UNAUTHENTICATED);
    const detail = common.ErrorDetail.decode(error.details[0]?.value ?? new Uint8Array());
    expect(detail).toEqual({ reason: common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST, detail: undefined });
  });
});
