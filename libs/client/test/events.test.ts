// System messages as sentences: who did what to whom, with names, "you" for this user, and the
// user id (marked) when no profile is available.
import { describe, expect, it } from "vitest";
import { describeEvent, type Person } from "../src/index.js";

const you: Person = { userId: "b@x", displayName: "Bob", self: true };
const alice: Person = { userId: "a@x", displayName: "Alice", self: false };
const carol: Person = { userId: "c@x", displayName: "Carol", self: false };
const stranger: Person = { userId: "d@x", displayName: undefined, self: false };

describe("describeEvent", () => {
  it("names everyone a commit added, the own user first", () => {
    expect(describeEvent({ type: "added", actor: alice, users: [carol, you, stranger] })).toBe(
      "Alice added you, Carol and d@x",
    );
  });

  it("lets the app say how an unnamed person is shown", () => {
    const label = (p: Person) => (p.self ? "you" : (p.displayName ?? `${p.userId} (no profile yet)`));
    expect(describeEvent({ type: "removed", actor: stranger, users: [you] }, label)).toBe(
      "d@x (no profile yet) removed you",
    );
  });

  it("says someone when the actor is unknown, and who left or joined", () => {
    expect(describeEvent({ type: "removed", actor: undefined, users: [carol] })).toBe(
      "someone removed Carol",
    );
    expect(describeEvent({ type: "left", actor: undefined, users: [carol, alice] })).toBe(
      "Carol and Alice left",
    );
    expect(describeEvent({ type: "joined", actor: undefined, users: [carol] })).toBe("Carol joined");
  });

  it("a rename names the old and the new name", () => {
    expect(describeEvent({ type: "renamed", actor: undefined, users: [alice], previousName: "Ally" })).toBe(
      "Ally is now called Alice",
    );
  });
});
