// Issue 6, "WelcomeInfo for a late joiner": the DS keeps the tree of the epoch a client was added
// in while the group moves on, serves it to the joiner, and releases it once every joiner of
// that epoch has caught up (committed) or expired.

import { toHex } from "@phoenix/crypto";
import { encryptMessage, processIncoming, updateOwnLeaf } from "@phoenix/mls";
import { eventually } from "@phoenix/runtime/testing";
import type { ClientState } from "ts-mls";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, Harness, type Member, TestGroup } from "./support/harness.js";

const text = new TextEncoder();
const HOUR = 3_600_000;

function treeHex(state: ClientState): string {
  return toHex(encodeRatchetTree(state.ratchetTree));
}

describe("WelcomeInfo for a late joiner", () => {
  let h: Harness;
  let offset = 0;
  beforeAll(async () => {
    h = await Harness.start({ now: () => Date.now() + offset });
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** A member commits a self-update; every other member processes it. */
  async function selfUpdate(g: TestGroup, by: Member): Promise<bigint> {
    const upd = await updateOwnLeaf(by.mls(), h.cs);
    const res = await g.operation(by, upd.commit, upd.groupInfo);
    await g.processByOthers(by, upd.commit);
    by.state = upd.newState;
    return res.epoch;
  }

  /** Waits until `count` payloads reached a member's queue (bounded). */
  async function waitForInbox(m: Member, count: number): Promise<void> {
    await eventually(() => h.inbox(m).length >= count, { message: `${count} payloads in ${m.name}'s queue` });
    expect(h.inbox(m)).toHaveLength(count);
  }

  /** Processes every MLS message in a member's queue after the first `skip`, in queue order. */
  async function catchUp(m: Member, skip: number): Promise<string[]> {
    const received: string[] = [];
    for (const payload of h.inbox(m).slice(skip)) {
      if (payload.content?.$case !== "mlsMessage") continue;
      const res = await processIncoming(m.mls(), h.cs, payload.content.value);
      if (res.kind === "application") received.push(new TextDecoder().decode(res.plaintext));
      m.state = res.newState;
    }
    return received;
  }

  it("serves the tree of the joiner's epoch after the group moved on; the joiner catches up from its queue", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carolUser = h.user("carol");
    const carol = await carolUser.client("carol");
    const dave = await h.user("dave").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);

    // Epoch 2: alice adds carol and dave; neither fetches WelcomeInfo yet.
    const { res: added, welcome } = await g.addWithoutJoining(alice, [carol, dave]);
    expect(added.epoch).toBe(2n);
    const treeOfEpoch2 = treeHex(alice.mls());

    // The group moves on by two epochs and a message before the joiners come online.
    expect(await selfUpdate(g, bob)).toBe(3n);
    expect(await selfUpdate(g, alice)).toBe(4n);
    const sent = await encryptMessage(bob.mls(), h.cs, text.encode("while you were away"));
    bob.state = sent.newState;
    await g.send(bob, sent.message);
    // Each joiner's queue: its Welcome bundle, the two commits, bob's message.
    await waitForInbox(carol, 4);
    await waitForInbox(dave, 4);
    expect(h.inbox(carol).map((p) => p.content?.$case)).toEqual([
      "welcomeBundle",
      "mlsMessage",
      "mlsMessage",
      "mlsMessage",
    ]);
    const current = await g.externalCommitInfo(alice);
    expect(toHex(current.ratchetTree)).toBe(treeHex(alice.mls()));
    expect(toHex(current.ratchetTree)).not.toBe(treeOfEpoch2);

    // WelcomeInfo for epoch 2 answers with the tree of epoch 2, not the current one, and the
    // members as of then (alice, bob, carol, dave).
    for (const j of [carol, dave]) {
      const info = await g.join(j, welcome, added.epoch);
      expect(toHex(info.ratchetTree)).toBe(treeOfEpoch2);
      expect(info.members.map((m) => m.leafIndex)).toEqual([0, 1, 2, 3]);
      expect(j.mls().groupContext.epoch).toBe(2n);
      // The joiner processes its queue in order (the Welcome bundle first, already used) and
      // ends where the others are.
      expect(await catchUp(j, 1)).toEqual(["while you were away"]);
      expect(j.mls().groupContext.epoch).toBe(4n);
      expect(treeHex(j.mls())).toBe(treeHex(alice.mls()));
      expect(treeHex(j.mls())).toBe(treeHex(bob.mls()));
    }

    // A message sent after that reaches both late joiners and decrypts.
    const after = await encryptMessage(alice.mls(), h.cs, text.encode("welcome, carol and dave"));
    alice.state = after.newState;
    const carolSeen = h.inbox(carol).length;
    const daveSeen = h.inbox(dave).length;
    await g.send(alice, after.message);
    await waitForInbox(carol, carolSeen + 1);
    await waitForInbox(dave, daveSeen + 1);
    expect(await catchUp(carol, carolSeen)).toEqual(["welcome, carol and dave"]);
    expect(await catchUp(dave, daveSeen)).toEqual(["welcome, carol and dave"]);

    // Carol catches up (commits): dave has not, so the tree of epoch 2 is still kept for him.
    expect(await selfUpdate(g, carol)).toBe(5n);
    expect(toHex((await g.welcomeInfo(dave, added.epoch)).ratchetTree)).toBe(treeOfEpoch2);
    // Dave commits too: every joiner of epoch 2 caught up, the tree is released — WelcomeInfo
    // answers NOT_FOUND ("the tree of that epoch is no longer kept") for each of them.
    expect(await selfUpdate(g, dave)).toBe(6n);
    expect(await codeOf(g.welcomeInfo(dave, added.epoch))).toBe("NOT_FOUND");
    expect(await codeOf(g.welcomeInfo(carol, added.epoch))).toBe("NOT_FOUND");
    // A KeyPackage that was never added is still refused as unauthenticated while a tree is kept.
    const { res: again } = await g.addWithoutJoining(alice, [await h.user("erin").client()]);
    const stranger = await carolUser.client("carol2");
    expect(await codeOf(g.welcomeInfo(stranger, again.epoch))).toBe("UNAUTHENTICATED");
  });

  it("releases the tree once its joiners expired or caught up (injected clock)", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const erin = await h.user("erin").client("erin", { keyPackageLifetimeSeconds: HOUR / 1000 });
    const frank = await h.user("frank").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    const { res: added, welcome } = await g.addWithoutJoining(alice, [erin, frank]);
    const treeOfEpoch2 = treeHex(alice.mls());
    expect(await selfUpdate(g, bob)).toBe(3n);
    try {
      // Within erin's KeyPackage lifetime the tree of epoch 2 is served to her …
      offset = HOUR / 2;
      expect(toHex((await g.welcomeInfo(erin, added.epoch)).ratchetTree)).toBe(treeOfEpoch2);
      // … after it, not to her, but still to frank, whose KeyPackage lives on.
      offset = 2 * HOUR;
      expect(await codeOf(g.welcomeInfo(erin, added.epoch))).toBe("NOT_FOUND");
      expect(toHex((await g.welcomeInfo(frank, added.epoch)).ratchetTree)).toBe(treeOfEpoch2);
      // Frank joins, catches up and commits: the only other joiner expired, the tree is released.
      await waitForInbox(frank, 2);
      await g.join(frank, welcome, added.epoch);
      await catchUp(frank, 1);
      expect(treeHex(frank.mls())).toBe(treeHex(alice.mls()));
      expect(await selfUpdate(g, frank)).toBe(4n);
      expect(await codeOf(g.welcomeInfo(frank, added.epoch))).toBe("NOT_FOUND");
      expect(await codeOf(g.welcomeInfo(erin, added.epoch))).toBe("NOT_FOUND");
    } finally {
      offset = 0;
    }
  });

  it("keeps the tree for an invitee offline while five further commits add members; it then joins", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    // Epoch 2: carol is invited but stays offline.
    const { res: added, welcome } = await g.addWithoutJoining(alice, [carol]);
    const treeOfEpoch2 = treeHex(alice.mls());
    // Five more epochs, each adding a member who joins at once (more than the 4 trees the
    // validator keeps by default).
    for (let i = 0; i < 5; i++) await g.add(alice, [await h.user(`late${i}`).client()]);
    expect(alice.mls().groupContext.epoch).toBe(7n);
    await waitForInbox(carol, 6);

    // Carol comes online: the tree of her epoch is still served; she joins and catches up.
    const info = await g.join(carol, welcome, added.epoch);
    expect(toHex(info.ratchetTree)).toBe(treeOfEpoch2);
    await catchUp(carol, 1);
    expect(carol.mls().groupContext.epoch).toBe(7n);
    expect(treeHex(carol.mls())).toBe(treeHex(alice.mls()));
    const hello = await encryptMessage(alice.mls(), h.cs, text.encode("glad you made it"));
    alice.state = hello.newState;
    await g.send(alice, hello.message);
    await waitForInbox(carol, 7);
    expect(await catchUp(carol, 6)).toEqual(["glad you made it"]);
    // Once she committed, her epoch's tree is released.
    expect(await selfUpdate(g, carol)).toBe(8n);
    expect(await codeOf(g.welcomeInfo(carol, added.epoch))).toBe("NOT_FOUND");
  });

  it("still releases the tree of an invitee whose KeyPackage expired while members were added", async () => {
    const alice = await h.user("alice").client();
    const erin = await h.user("erin").client("erin", { keyPackageLifetimeSeconds: HOUR / 1000 });
    const g = await TestGroup.create(h, alice);
    const { res: added } = await g.addWithoutJoining(alice, [erin]);
    const late: Member[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await h.user(`later${i}`).client();
      const { res } = await g.addWithoutJoining(alice, [m]);
      expect(res.epoch).toBe(BigInt(i + 2));
      late.push(m);
    }
    try {
      offset = 2 * HOUR;
      expect(await codeOf(g.welcomeInfo(erin, added.epoch))).toBe("NOT_FOUND");
      // A further commit after the expiry: erin's epoch stays released, the others are served.
      expect(await selfUpdate(g, alice)).toBe(7n);
      expect(await codeOf(g.welcomeInfo(erin, added.epoch))).toBe("NOT_FOUND");
      const first = late[0] as Member;
      expect((await g.welcomeInfo(first, 2n)).ratchetTree.length).toBeGreaterThan(0);
    } finally {
      offset = 0;
    }
  });

  it("releases the tree after the KeyPackage lifetime even without a further commit", async () => {
    const alice = await h.user("alice").client();
    const erin = await h.user("erin").client("erin", { keyPackageLifetimeSeconds: HOUR / 1000 });
    const g = await TestGroup.create(h, alice);
    const { res: added } = await g.addWithoutJoining(alice, [erin]);
    expect(await selfUpdate(g, alice)).toBe(2n);
    try {
      offset = 2 * HOUR;
      expect(await codeOf(g.welcomeInfo(erin, added.epoch))).toBe("NOT_FOUND");
    } finally {
      offset = 0;
    }
  });
});
