import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { checkDomain, checkGroupId } from "./validate.js";

describe("QS domain fields", () => {
  it("accepts lower-case DNS names", () => {
    for (const good of ["example.org", "localhost", "a-b.c", `${"a".repeat(63)}.test`]) {
      expect(checkDomain(good, "recipient.domain")).toBe(good);
    }
  });

  it("refuses what ids refuse with INVALID_ARGUMENT naming the field", () => {
    // The old pattern had no label limit: a 64-character label passed.
    for (const bad of ["a..b", "-a.b", "a-.b", `${"a".repeat(64)}.test`, "Example.org", "a.b.", ""]) {
      expect(() => checkDomain(bad, "recipient.domain"), bad).toThrow(
        expect.objectContaining({
          code: status.INVALID_ARGUMENT,
          message: expect.stringContaining("recipient.domain"),
        }),
      );
    }
  });

  it("checks the domain of a group id", () => {
    const uuid = new Uint8Array(16);
    expect(checkGroupId({ uuid, domain: "a-b.c" }, "group_id").domain).toBe("a-b.c");
    expect(() => checkGroupId({ uuid, domain: `${"a".repeat(64)}.test` }, "group_id")).toThrow(
      expect.objectContaining({
        code: status.INVALID_ARGUMENT,
        message: expect.stringContaining("group_id.domain"),
      }),
    );
  });
});
