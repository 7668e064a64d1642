// Drives real ts-mls clients and a PublicGroup side by side, checking after every step that the
// validator's GroupContext and ratchet tree equal every member's byte for byte.
import {
  type CiphersuiteImpl,
  type ClientState,
  type Credential,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPub,
  createProposal,
  defaultCapabilities,
  encodeMlsMessage,
  type FramedContent,
  type GroupInfo,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type KeyPackage,
  type Lifetime,
  type PrivateKeyPackage,
  type Proposal,
  type PublicMessage,
  type Welcome,
} from "ts-mls";
import { signFramedContentTBS, toTbs } from "ts-mls/framedContent.js";
import { encodeGroupContext } from "ts-mls/groupContext.js";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { expect } from "vitest";
import { processIncoming } from "../../src/client/group-client.js";
import { joinGroupByExternalCommit, joinGroupFromWelcome } from "../../src/client/join.js";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "../../src/node-crypto-provider.js";
import {
  type MergeOptions,
  PublicGroup,
  type PublicGroupOptions,
  type StagedCommit,
} from "../../src/public-group/public-group.js";

export const text = new TextEncoder();
/** Extension type of the custom GroupContext extension used in tests; every test KeyPackage supports it. */
export const TEST_EXTENSION = 0xff01;

export async function phoenixSuite(): Promise<CiphersuiteImpl> {
  return getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
}

export function capabilities() {
  const caps = defaultCapabilities();
  return { ...caps, extensions: [...caps.extensions, TEST_EXTENSION] };
}

export interface Kp {
  publicPackage: KeyPackage;
  privatePackage: PrivateKeyPackage;
}

export async function keyPackage(cs: CiphersuiteImpl, name: string, lifetime?: Lifetime): Promise<Kp> {
  return generateKeyPackage(
    { credentialType: "basic", identity: text.encode(name) },
    capabilities(),
    lifetime ?? { notBefore: 0n, notAfter: 2n ** 62n },
    [],
    cs,
  );
}

export function identityOf(credential: Credential): string {
  return credential.credentialType === "basic" ? new TextDecoder().decode(credential.identity) : "?";
}

function publicMessageOf(msg: { wireformat: string; publicMessage?: PublicMessage }): PublicMessage {
  if (msg.wireformat !== "mls_public_message" || msg.publicMessage === undefined)
    throw new Error("expected a PublicMessage");
  return msg.publicMessage;
}

/** A PublicMessage as the MLSMessage bytes members receive. */
export function publicMessageBytes(publicMessage: PublicMessage): Uint8Array {
  return encodeMlsMessage({ version: "mls10", wireformat: "mls_public_message", publicMessage });
}

/** A committed but not yet delivered commit. */
export interface PendingCommit {
  by: string;
  message: PublicMessage;
  welcome: Welcome | undefined;
  groupInfo: GroupInfo;
  newState: ClientState;
  joiners: { name: string; kp: Kp }[];
}

export class Scenario {
  readonly members = new Map<string, ClientState>();
  validator!: PublicGroup;
  /** Passed to the validator's merge of every delivered commit. */
  mergeOptions: MergeOptions = {};

  private constructor(
    readonly cs: CiphersuiteImpl,
    readonly options: PublicGroupOptions,
  ) {}

  static async start(creator: string, options: Partial<PublicGroupOptions> = {}): Promise<Scenario> {
    const cs = await phoenixSuite();
    const s = new Scenario(cs, { cipherSuite: cs, validateCredential: () => true, ...options });
    const kp = await keyPackage(cs, creator);
    const state = await createGroup(
      text.encode(`group-${Math.random()}`),
      kp.publicPackage,
      kp.privatePackage,
      [],
      cs,
    );
    s.members.set(creator, state);
    const gi = await createGroupInfoWithExternalPub(state, [], cs);
    s.validator = await PublicGroup.fromGroupInfo(gi, s.options, state.ratchetTree);
    s.assertInSync();
    return s;
  }

  state(name: string): ClientState {
    const st = this.members.get(name);
    if (st === undefined) throw new Error(`no member ${name}`);
    return st;
  }

  leafOf(name: string): number {
    return this.state(name).privatePath.leafIndex;
  }

  /** A member creates a commit (PublicMessage) without anyone processing it yet. */
  async makeCommit(
    by: string,
    proposals: Proposal[] = [],
    opts: { joiners?: { name: string; kp: Kp }[]; aad?: Uint8Array } = {},
  ): Promise<PendingCommit> {
    const joiners = opts.joiners ?? [];
    const extra: Proposal[] = [
      ...joiners.map((j) => ({ proposalType: "add" as const, add: { keyPackage: j.kp.publicPackage } })),
      ...proposals,
    ];
    const res = await createCommit(
      { state: this.state(by), cipherSuite: this.cs },
      { wireAsPublicMessage: true, extraProposals: extra, authenticatedData: opts.aad ?? new Uint8Array(0) },
    );
    const groupInfo = await createGroupInfoWithExternalPub(res.newState, [], this.cs);
    return {
      by,
      message: publicMessageOf(res.commit),
      welcome: res.welcome,
      groupInfo,
      newState: res.newState,
      joiners,
    };
  }

  /** The DS validates and merges a commit, then every member processes it and joiners join. */
  async deliver(c: PendingCommit): Promise<StagedCommit> {
    const staged = await this.validator.stageCommit(c.message);
    await this.validator.verifyGroupInfo(staged, c.groupInfo);
    this.validator.merge(staged, this.mergeOptions);
    for (const [name, st] of [...this.members]) {
      if (name === c.by) continue;
      const out = await processIncoming(st, this.cs, publicMessageBytes(c.message));
      if (out.kind === "handshake" && out.removedFromGroup) this.members.delete(name);
      else this.members.set(name, out.newState);
    }
    this.members.set(c.by, c.newState);
    if (c.joiners.length > 0) {
      if (c.welcome === undefined) throw new Error("commit with joiners has no Welcome");
      // Joiners fetch the tree of their epoch from the DS (no ratchet_tree extension in the Welcome).
      const tree = this.validator.treeAt(staged.newEpoch);
      for (const j of c.joiners) {
        this.members.set(
          j.name,
          await joinGroupFromWelcome(c.welcome, j.kp.publicPackage, j.kp.privatePackage, this.cs, tree),
        );
      }
    }
    this.assertInSync();
    return staged;
  }

  async commit(
    by: string,
    proposals: Proposal[] = [],
    opts: { joiners?: { name: string; kp: Kp }[]; aad?: Uint8Array } = {},
  ) {
    return this.deliver(await this.makeCommit(by, proposals, opts));
  }

  /** A member sends a proposal as PublicMessage; the DS validates it and every other member stores it. */
  async propose(by: string, proposal: Proposal) {
    const res = await createProposal(this.state(by), true, proposal, this.cs);
    const pm = publicMessageOf(res.message);
    const accepted = await this.validator.processProposal(pm);
    this.members.set(by, res.newState);
    for (const [name, st] of [...this.members]) {
      if (name === by) continue;
      this.members.set(name, (await processIncoming(st, this.cs, publicMessageBytes(pm))).newState);
    }
    this.assertInSync();
    return accepted;
  }

  /** A non-member joins (or a member resyncs) by external commit built from a member's GroupInfo. */
  async makeExternalCommit(name: string, kp: Kp, resync: boolean, aad?: Uint8Array) {
    const anyMember = [...this.members.values()][0];
    if (anyMember === undefined) throw new Error("empty group");
    const gi = await createGroupInfoWithExternalPub(anyMember, [], this.cs);
    const res = await joinGroupByExternalCommit(
      gi,
      kp.publicPackage,
      kp.privatePackage,
      resync,
      this.cs,
      anyMember.ratchetTree,
      undefined,
      aad,
    );
    const groupInfo = await createGroupInfoWithExternalPub(res.newState, [], this.cs);
    return {
      by: name,
      message: res.publicMessage,
      welcome: undefined,
      groupInfo,
      newState: res.newState,
      joiners: [],
    };
  }

  async externalJoin(name: string, kp: Kp, resync = false): Promise<StagedCommit> {
    const c = await this.makeExternalCommit(name, kp, resync);
    // In a resync the old state is replaced, so the resyncing member must not process its own commit.
    return this.deliver(c);
  }

  assertInSync(): void {
    const gc = encodeGroupContext(this.validator.groupContext);
    const tree = this.validator.encodedTree();
    for (const [name, st] of this.members) {
      expect(encodeGroupContext(st.groupContext), `${name}'s GroupContext`).toEqual(gc);
      expect(encodeRatchetTree(st.ratchetTree), `${name}'s ratchet tree`).toEqual(tree);
    }
  }

  /** Re-sign modified framed content with a member's key: what a malicious member can send. */
  async resign(message: PublicMessage, content: FramedContent, signKey: Uint8Array): Promise<PublicMessage> {
    const signature = await signFramedContentTBS(
      signKey,
      toTbs(content, "mls_public_message", this.validator.groupContext),
      this.cs.signature,
    );
    return { ...message, content, auth: { ...message.auth, signature } } as PublicMessage;
  }
}
