// A commit may remove a member and add a joiner on the leaf it just blanked (Removes apply before
// Adds): a pending self-remove committed together with an invitation. ts-mls 1.6.4 decided
// "removed" by a blank leaf after all proposals, so the removed member saw its leaf occupied and
// failed on the UpdatePath; scripts/patch-ts-mls.mjs makes a Remove naming the leaf decide.
import { describe, expect, it } from "vitest";
import { keyPackage, Scenario } from "./support/harness.js";

describe("a commit that gives a removed member's leaf to a joiner", () => {
  it("the removed member sees its removal, the joiner sits on the reused leaf, the rest stay in sync", async () => {
    const s = await Scenario.start("a");
    await s.commit("a", [], {
      joiners: [
        { name: "b", kp: await keyPackage(s.cs, "b") },
        { name: "c", kp: await keyPackage(s.cs, "c") },
      ],
    });
    const leafOfB = s.leafOf("b");
    // deliver() drops a member whose processing reports removedFromGroup, and throws on failure.
    await s.commit("a", [{ proposalType: "remove", remove: { removed: leafOfB } }], {
      joiners: [{ name: "d", kp: await keyPackage(s.cs, "d") }],
    });
    expect(s.members.has("b")).toBe(false);
    expect(s.leafOf("d")).toBe(leafOfB);
    expect([...s.members.keys()].sort()).toEqual(["a", "c", "d"]);
  });
});
