import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { decodeRichStatus, encodeRichStatus, statusName } from "./status-details.js";

describe("rich status encoding", () => {
  it("round-trips and skips unknown fields", () => {
    const encoded = encodeRichStatus({
      code: status.NOT_FOUND,
      message: "no such queue",
      details: [{ typeUrl: "type.googleapis.com/x.Y", value: new Uint8Array([1, 2, 3]) }],
    });
    const withUnknown = new Uint8Array([...encoded, 0x20, 0x01]); // field 4, varint 1
    expect(decodeRichStatus(withUnknown)).toEqual({
      code: status.NOT_FOUND,
      message: "no such queue",
      details: [{ typeUrl: "type.googleapis.com/x.Y", value: new Uint8Array([1, 2, 3]) }],
    });
  });

  it("names status codes", () => {
    expect(statusName(status.RESOURCE_EXHAUSTED)).toBe("RESOURCE_EXHAUSTED");
    expect(statusName(99)).toBe("CODE_99");
  });
});
