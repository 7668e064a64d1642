import type { ClientState } from "ts-mls";
import { encodeGroupContext } from "ts-mls/groupContext.js";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { describe, expect, it } from "vitest";
import {
  decodeRoles,
  encodeRoles,
  isLastResort,
  PHOENIX_EXTENSION_TYPES,
  queueConfigOf,
  type RoleAssignment,
  RolesDecodeError,
  roleOf,
  rolesOf,
} from "../src/client/extensions.js";
import {
  addMembers,
  type CommitOutput,
  commitPendingProposals,
  createKeyPackage,
  createPhoenixGroup,
  decodeClientState,
  encodeClientState,
  encryptMessage,
  joinExternally,
  joinFromWelcome,
  processIncoming,
  proposeSelfRemove,
  ResyncLeafNotFoundError,
  removeMembers,
  resync,
  setRoles,
  updateOwnLeaf,
} from "../src/client/group-client.js";
import { parseGroupInfo, parseMlsMessage, parsePublicMessage } from "../src/public-group/messages.js";
import { PublicGroup } from "../src/public-group/public-group.js";
import { phoenixSuite, text } from "./support/harness.js";

const cred = (name: string) => ({ credentialType: "basic" as const, identity: text.encode(name) });
const pseudonym = (name: string) => ({ kind: "pseudonym" as const, pseudonym: text.encode(name) });

describe("roles extension encoding", () => {
  it("round-trips canonically and refuses malformed data", () => {
    const roles: RoleAssignment[] = [
      { subject: pseudonym("zed"), role: "member" },
      { subject: { kind: "leaf", leafIndex: 3 }, role: "admin" },
      { subject: pseudonym("amy"), role: "admin" },
    ];
    const bytes = encodeRoles(roles);
    const decoded = decodeRoles(bytes);
    expect(decoded.map((r) => r.role)).toEqual(["admin", "admin", "member"]);
    expect(encodeRoles(decoded)).toEqual(bytes);
    expect(encodeRoles([...roles].reverse())).toEqual(bytes);
    expect(roleOf(decoded, pseudonym("amy"))).toBe("admin");
    expect(roleOf(decoded, pseudonym("bob"))).toBe("member");
    expect(roleOf(decoded, { kind: "leaf", leafIndex: 3 })).toBe("admin");
    expect(() => encodeRoles([roles[0] as RoleAssignment, roles[0] as RoleAssignment])).toThrow(RangeError);
    expect(() => decodeRoles(bytes.subarray(0, bytes.length - 1))).toThrow(RolesDecodeError);
    const badRole = bytes.slice();
    badRole[bytes.length - 1] = 9;
    expect(() => decodeRoles(badRole)).toThrow(RolesDecodeError);
    expect(() => decodeRoles(Uint8Array.of(...bytes, 0))).toThrow(RolesDecodeError);
  });
});

describe("client helpers", () => {
  it("run a whole group life cycle that the DS validator accepts step by step", async () => {
    const cs = await phoenixSuite();
    const dsOptions = { cipherSuite: cs, validateCredential: () => true };
    const kp = async (name: string, lastResort = false) =>
      createKeyPackage({
        cipherSuite: cs,
        credential: cred(name),
        queueConfig: text.encode(`queue-of-${name}`),
        lastResort,
      });

    const aliceKp = await kp("alice");
    const bobKp = await kp("bob", true);
    const carolKp = await kp("carol");
    expect(isLastResort(bobKp.publicPackage)).toBe(true);
    expect(isLastResort(aliceKp.publicPackage)).toBe(false);
    expect(new TextDecoder().decode(queueConfigOf(bobKp.publicPackage))).toBe("queue-of-bob");

    const created = await createPhoenixGroup({
      cipherSuite: cs,
      groupId: text.encode(`g-${Math.random()}`),
      keyPackage: aliceKp.publicPackage,
      privateKeyPackage: aliceKp.privatePackage,
      roles: [{ subject: pseudonym("alice"), role: "admin" }],
    });
    const ds = await PublicGroup.fromGroupInfo(
      parseGroupInfo(created.groupInfo),
      dsOptions,
      created.state.ratchetTree,
    );
    expect(rolesOf(ds.groupContext)).toEqual([{ subject: pseudonym("alice"), role: "admin" }]);

    const members = new Map<string, ClientState>([["alice", created.state]]);
    let latestGroupInfo = created.groupInfo;
    const inSync = () => {
      for (const [name, st] of members) {
        expect(encodeGroupContext(st.groupContext), name).toEqual(encodeGroupContext(ds.groupContext));
        expect(encodeRatchetTree(st.ratchetTree), name).toEqual(ds.encodedTree());
      }
    };
    /** The DS validates the upload, then the other members process the commit. */
    const deliver = async (by: string, out: CommitOutput) => {
      expect(parseMlsMessage(out.commit).wireformat).toBe("mls_public_message");
      const staged = await ds.processCommit(parsePublicMessage(out.commit), parseGroupInfo(out.groupInfo));
      for (const [name, st] of [...members]) {
        if (name === by) continue;
        const res = await processIncoming(st, cs, out.commit);
        if (res.kind === "handshake" && res.removedFromGroup) members.delete(name);
        else members.set(name, res.newState);
      }
      members.set(by, out.newState);
      latestGroupInfo = out.groupInfo;
      inSync();
      return staged;
    };
    const get = (name: string) => {
      const st = members.get(name);
      if (st === undefined) throw new Error(name);
      return st;
    };

    // Add two members; the DS sees their queue configs.
    const add = await addMembers(get("alice"), cs, [bobKp.publicPackage, carolKp.publicPackage]);
    let staged = await deliver("alice", add);
    expect(staged.added.map((a) => new TextDecoder().decode(queueConfigOf(a.keyPackage)))).toEqual([
      "queue-of-bob",
      "queue-of-carol",
    ]);
    if (add.welcome === undefined) throw new Error("no welcome");
    members.set(
      "bob",
      await joinFromWelcome(
        add.welcome,
        bobKp.publicPackage,
        bobKp.privatePackage,
        cs,
        ds.treeAt(staged.newEpoch),
      ),
    );
    members.set(
      "carol",
      await joinFromWelcome(
        add.welcome,
        carolKp.publicPackage,
        carolKp.privatePackage,
        cs,
        ds.treeAt(staged.newEpoch),
      ),
    );
    inSync();

    // Application messages are PrivateMessages, both ways, with AAD.
    const sent = await encryptMessage(get("alice"), cs, text.encode("hello"), { aad: text.encode("meta") });
    members.set("alice", sent.newState);
    expect(parseMlsMessage(sent.message).wireformat).toBe("mls_private_message");
    const got = await processIncoming(get("bob"), cs, sent.message);
    if (got.kind !== "application") throw new Error("expected application message");
    expect(new TextDecoder().decode(got.plaintext)).toBe("hello");
    expect(new TextDecoder().decode(got.aad)).toBe("meta");
    members.set("bob", got.newState);

    // Persist bob's state and continue with the restored copy.
    members.set("bob", decodeClientState(encodeClientState(get("bob"))));
    const reply = await encryptMessage(get("bob"), cs, text.encode("hi alice"));
    members.set("bob", reply.newState);
    const gotReply = await processIncoming(get("alice"), cs, reply.message);
    expect(gotReply.kind === "application" && new TextDecoder().decode(gotReply.plaintext)).toBe("hi alice");
    members.set("alice", gotReply.newState);

    // Self-remove: carol proposes, bob commits.
    const selfRemove = await proposeSelfRemove(get("carol"), cs);
    const accepted = await ds.processProposal(parsePublicMessage(selfRemove.proposal));
    expect(accepted.senderLeafIndex).toBe(2);
    members.set("carol", selfRemove.newState);
    for (const name of ["alice", "bob"])
      members.set(name, (await processIncoming(get(name), cs, selfRemove.proposal)).newState);
    staged = await deliver("bob", await commitPendingProposals(get("bob"), cs));
    expect(staged.removed.map((r) => r.leafIndex)).toEqual([2]);
    expect(members.has("carol")).toBe(false);

    // Update, then a role change.
    await deliver("alice", await updateOwnLeaf(get("alice"), cs));
    const roles: RoleAssignment[] = [
      { subject: pseudonym("alice"), role: "admin" },
      { subject: pseudonym("bob"), role: "admin" },
    ];
    staged = await deliver("alice", await setRoles(get("alice"), cs, roles));
    // The commit's new group context extensions carry exactly the assigned roles.
    const rolesExtension = staged.newExtensions?.find(
      (e) => e.extensionType === PHOENIX_EXTENSION_TYPES.roles,
    );
    expect(decodeRoles(rolesExtension?.extensionData ?? new Uint8Array())).toEqual(roles);
    expect(roleOf(rolesOf(ds.groupContext) ?? [], pseudonym("bob"))).toBe("admin");

    // External join from the DS's tree and the last GroupInfo.
    // (The DS serves the GroupInfo the last committer uploaded.)
    const daveKp = await kp("dave");
    const join = await joinExternally(
      latestGroupInfo,
      daveKp.publicPackage,
      daveKp.privatePackage,
      cs,
      ds.tree,
    );
    staged = await deliver("dave", join);
    expect(staged.external).toBe(true);

    // Resync: alice rebuilds her membership from her signature key alone.
    const aliceLeaf = get("alice").privatePath.leafIndex;
    const aliceSig = {
      signKey: get("alice").signaturePrivateKey,
      publicKey: ds.leaf(aliceLeaf)?.signaturePublicKey ?? new Uint8Array(),
    };
    await expect(
      resync({
        cipherSuite: cs,
        groupInfo: latestGroupInfo,
        ratchetTree: ds.tree,
        credential: cred("alice"),
        signatureKeyPair: { ...aliceSig, publicKey: new Uint8Array(32) },
        queueConfig: text.encode("q"),
      }),
    ).rejects.toBeInstanceOf(ResyncLeafNotFoundError);
    const rs = await resync({
      cipherSuite: cs,
      groupInfo: latestGroupInfo,
      ratchetTree: ds.tree,
      credential: cred("alice"),
      signatureKeyPair: aliceSig,
      queueConfig: text.encode("queue-of-alice"),
    });
    staged = await deliver("alice", rs);
    expect(staged.resync).toBe(true);
    expect(staged.removed.map((r) => r.leafIndex)).toEqual([aliceLeaf]);

    // Remove dave.
    staged = await deliver(
      "alice",
      await removeMembers(get("alice"), cs, [get("dave").privatePath.leafIndex]),
    );
    expect(members.has("dave")).toBe(false);
    expect([...members.keys()].sort()).toEqual(["alice", "bob"]);
  });
});
