import { describe, expect, it } from "vitest";
import { connectionQueueContext, mlsGroupId, qualifiedGroupId } from "./ids.js";

const uuid = Uint8Array.from({ length: 16 }, (_, i) => i + 1);

describe("protocol id encodings", () => {
  it("an MLS group id is the 16 uuid bytes followed by the UTF-8 domain, and reads back", () => {
    const id = mlsGroupId({ uuid, domain: "example.org" });
    expect(id).toEqual(new Uint8Array([...uuid, ...new TextEncoder().encode("example.org")]));
    expect(qualifiedGroupId(id)).toEqual({ uuid, domain: "example.org" });
  });

  it("a client's connection-queue context is client uuid ‖ user uuid", () => {
    const userUuid = new Uint8Array(16).fill(0xaa);
    expect(connectionQueueContext({ client: { clientUuid: uuid, userUuid } })).toEqual(
      new Uint8Array([...uuid, ...userUuid]),
    );
  });

  it("a handle's connection-queue context is a copy of the handle hash", () => {
    const handleHash = new Uint8Array(32).fill(7);
    const context = connectionQueueContext({ handleHash });
    expect(context).toEqual(handleHash);
    context[0] = 0;
    expect(handleHash[0]).toBe(7);
  });
});
