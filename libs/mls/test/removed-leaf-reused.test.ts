// A commit may remove a member and add a joiner on the leaf it just blanked (Removes apply before
// Adds): a pending self-remove committed together with an invitation. ts-mls 1.6.4 decides
// "removed" by a blank leaf after all proposals, so the removed member sees its leaf occupied and
// fails on the UpdatePath; processIncoming decides by the Remove proposals of the authentic
// commit before ts-mls sees it.
import { createCommit, emptyPskIndex, encodeMlsMessage, processPublicMessage } from "ts-mls";
import { describe, expect, it } from "vitest";
import { processIncoming } from "../src/client/group-client.js";
import { keyPackage, publicMessageBytes, Scenario } from "./support/harness.js";

async function trio(): Promise<Scenario> {
  const s = await Scenario.start("a");
  await s.commit("a", [], {
    joiners: [
      { name: "b", kp: await keyPackage(s.cs, "b") },
      { name: "c", kp: await keyPackage(s.cs, "c") },
    ],
  });
  return s;
}

describe("a commit that gives a removed member's leaf to a joiner", () => {
  it("the removed member sees its removal, the joiner sits on the reused leaf, the rest stay in sync", async () => {
    const s = await trio();
    const leafOfB = s.leafOf("b");
    const c = await s.makeCommit("a", [{ proposalType: "remove", remove: { removed: leafOfB } }], {
      joiners: [{ name: "d", kp: await keyPackage(s.cs, "d") }],
    });
    // ts-mls 1.6.4 on its own fails to process it for b: the scenario is the one it gets wrong.
    await expect(processPublicMessage(s.state("b"), c.message, emptyPskIndex, s.cs)).rejects.toThrow(
      /No overlap/,
    );
    // deliver() drops a member whose processing reports removedFromGroup, and throws on failure.
    await s.deliver(c);
    expect(s.members.has("b")).toBe(false);
    expect(s.leafOf("d")).toBe(leafOfB);
    expect([...s.members.keys()].sort()).toEqual(["a", "c", "d"]);
  });

  it("a self-remove proposal committed by reference with an invitation removes the proposer", async () => {
    const s = await trio();
    const leafOfB = s.leafOf("b");
    await s.propose("b", { proposalType: "remove", remove: { removed: leafOfB } });
    // a's commit includes b's stored proposal by reference and adds d on the freed leaf.
    const c = await s.makeCommit("a", [], { joiners: [{ name: "d", kp: await keyPackage(s.cs, "d") }] });
    const proposals = c.message.content.contentType === "commit" ? c.message.content.commit.proposals : [];
    expect(proposals.some((p) => p.proposalOrRefType === "reference")).toBe(true);
    const bBefore = s.state("b");
    const out = await processIncoming(bBefore, s.cs, publicMessageBytes(c.message));
    expect(out).toMatchObject({ kind: "handshake", removedFromGroup: true });
    expect(out.newState.groupActiveState.kind).toBe("removedFromGroup");
    await s.deliver(c);
    expect([...s.members.keys()].sort()).toEqual(["a", "c", "d"]);
    expect(s.leafOf("d")).toBe(leafOfB);
  });

  it("a forged commit naming a member's leaf does not make it leave", async () => {
    const s = await trio();
    const c = await s.makeCommit("a", [{ proposalType: "remove", remove: { removed: s.leafOf("b") } }]);
    if (c.message.senderType !== "member") throw new Error("expected a member commit");
    const tag = c.message.membershipTag.slice();
    tag[0] = (tag[0] ?? 0) ^ 1;
    const forged = { ...c.message, membershipTag: tag };
    await expect(processIncoming(s.state("b"), s.cs, publicMessageBytes(forged))).rejects.toThrow(
      /membership/i,
    );
    // The genuine commit still removes b.
    await s.deliver(c);
    expect(s.members.has("b")).toBe(false);
  });

  it("the same commit sent as a PrivateMessage also removes the member (and only it)", async () => {
    const s = await trio();
    const d = await keyPackage(s.cs, "d");
    const res = await createCommit(
      { state: s.state("a"), cipherSuite: s.cs },
      {
        wireAsPublicMessage: false,
        extraProposals: [
          { proposalType: "remove", remove: { removed: s.leafOf("b") } },
          { proposalType: "add", add: { keyPackage: d.publicPackage } },
        ],
      },
    );
    expect(res.commit.wireformat).toBe("mls_private_message");
    const bytes = encodeMlsMessage(res.commit);
    const forB = await processIncoming(s.state("b"), s.cs, bytes);
    expect(forB).toMatchObject({ kind: "handshake", removedFromGroup: true });
    const forC = await processIncoming(s.state("c"), s.cs, bytes);
    expect(forC).toMatchObject({ kind: "handshake", removedFromGroup: false });
    expect(forC.newState.groupContext.epoch).toBe(res.newState.groupContext.epoch);
  });
});
