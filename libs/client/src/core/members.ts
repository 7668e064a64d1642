// Membership bookkeeping: which user sits on which leaf of a group (from the client infos that
// come with commits and Welcomes), who sat on leaves since taken away, and who is leaving.
import { bytesEqual, formatUserId, LeafCredential, openClientInfo, toHex } from "@phoenix/crypto";
import { and, eq } from "drizzle-orm";
import type { ClientState } from "ts-mls";
import { leafIdentities, treeIdentities } from "../protocol/tree.js";
import { buf, type ClientStore, u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { ConversationRow, Conversations } from "./conversations.js";
import type { ClientIdentity } from "./identity.js";
import type { CredentialTrust } from "./trust.js";

type OpenedLeaf = { leafIndex: number; identity: Uint8Array; opened: ReturnType<typeof openClientInfo> };

/** The members and former members tables, and the pending "leaving" marks. */
export class Members {
  constructor(
    private readonly store: ClientStore,
    private readonly trust: CredentialTrust,
    private readonly conversations: Conversations,
    private readonly identity: ClientIdentity,
  ) {}

  /**
   * Brings the members table in line with the group's tree after a commit: new leaves are named
   * by the client infos that came with the commit, blank ones are gone. Writes system messages.
   */
  applyMembership(
    c: ConversationRow,
    state: ClientState,
    infos: Uint8Array[],
    committer: string | undefined,
  ): void {
    const before = this.rowsOf(c.id);
    const beforeUsers = new Set(before.map((m) => m.userId));
    const leaves = leafIdentities(state);
    const kept = keptLeaves(c, leaves, before);
    this.dropTakenLeaves(c, before, kept);
    this.pruneFormerMembers(c.id, state);
    this.attributeNewLeaves(c, leaves, kept, infos);
    const after = new Set(this.rowsOf(c.id).map((m) => m.userId));
    this.announceChanges(c, beforeUsers, after, committer);
  }

  /**
   * Fetches the AS credentials {@link applyMembership} will need for the leaves a commit adds
   * (their domains may be new to this client, or their intermediates newer). Call it before the
   * store transaction that applies the commit.
   */
  async learnJoinerCredentials(c: ConversationRow, state: ClientState, infos: Uint8Array[]): Promise<void> {
    if (infos.length === 0) return;
    const leaves = leafIdentities(state);
    for (const { opened } of openNewLeaves(c, leaves, keptLeaves(c, leaves, this.rowsOf(c.id)), infos)) {
      await this.trust.learnCredentialsFor(opened.clientCredential.clientId.userId.domain, () =>
        this.trust.verifier.verifyClientCredential(opened.clientCredential),
      );
    }
  }

  /**
   * The user who sent a message of conversation `id` from `leafIndex`, whose leaf credential in
   * the message's epoch was `leafCredential`: the current member on that leaf when it is still the
   * same leaf, else the former member (removed, or its leaf reused by a later commit).
   */
  senderOf(
    id: string,
    state: ClientState,
    leafIndex: number,
    leafCredential: Uint8Array,
  ): string | undefined {
    const current = leafIdentities(state).get(leafIndex);
    if (current !== undefined && bytesEqual(current, leafCredential)) return this.memberAt(id, leafIndex);
    return this.store.db
      .select()
      .from(t.formerMembers)
      .where(
        and(eq(t.formerMembers.conversationId, id), eq(t.formerMembers.leafCredential, buf(leafCredential))),
      )
      .get()?.userId;
  }

  /** Remembers that `userId` proposed to leave conversation `id` (to say "left", not "removed"). */
  markLeaving(id: string, userId: string): void {
    const users = new Set(this.store.getJson<string[]>(`leaving:${id}`) ?? []);
    users.add(userId);
    this.store.setJson(`leaving:${id}`, [...users]);
  }

  /** Whether `userId` had proposed to leave `id`; forgets it. */
  takeLeaving(id: string, userId: string): boolean {
    const users = new Set(this.store.getJson<string[]>(`leaving:${id}`) ?? []);
    const had = users.delete(userId);
    if (had) this.store.setJson(`leaving:${id}`, [...users]);
    return had;
  }

  /** Records the members a joiner learned from WelcomeInfo / the connection group info. */
  recordMembers(
    id: string,
    state: ClientState,
    members: readonly { leafIndex: number; encryptedClientInfo: Uint8Array }[],
    credentialKey: Uint8Array,
  ): void {
    for (const m of members) {
      const user = this.userOfClientInfo(state, m.leafIndex, m.encryptedClientInfo, credentialKey);
      if (user !== undefined) this.add(id, m.leafIndex, user);
    }
  }

  /** Records this client itself on `leafIndex` (replacing whoever a WelcomeInfo put there). */
  recordSelf(id: string, leafIndex: number): void {
    const userId = this.identity.userId;
    this.store.db
      .insert(t.members)
      .values({ conversationId: id, leafIndex, userId })
      .onConflictDoUpdate({ target: [t.members.conversationId, t.members.leafIndex], set: { userId } })
      .run();
  }

  /** Forgets every member and former member of conversation `id` (before it is joined anew). */
  forget(id: string): void {
    this.store.db.delete(t.members).where(eq(t.members.conversationId, id)).run();
    this.store.db.delete(t.formerMembers).where(eq(t.formerMembers.conversationId, id)).run();
  }

  memberAt(id: string, leafIndex: number): string | undefined {
    return this.store.db
      .select()
      .from(t.members)
      .where(and(eq(t.members.conversationId, id), eq(t.members.leafIndex, leafIndex)))
      .get()?.userId;
  }

  /** The leaves of conversation `id` on which any of `userIds` sits. */
  leavesOf(id: string, userIds: readonly string[]): number[] {
    return this.rowsOf(id)
      .filter((m) => userIds.includes(m.userId))
      .map((m) => m.leafIndex);
  }

  /** The conversations `userId` sits in (any leaf). */
  conversationsOf(userId: string): string[] {
    const rows = this.store.db.select().from(t.members).where(eq(t.members.userId, userId)).all();
    return [...new Set(rows.map((m) => m.conversationId))];
  }

  /** Every attributed leaf of conversation `id`. */
  rowsOf(id: string): { leafIndex: number; userId: string }[] {
    return this.store.db.select().from(t.members).where(eq(t.members.conversationId, id)).all();
  }

  /** Records `userId` on a leaf of conversation `id`. */
  add(id: string, leafIndex: number, userId: string): void {
    this.store.db.insert(t.members).values({ conversationId: id, leafIndex, userId }).run();
  }

  /** Deletes the rows of leaves the commit took away, remembering who sat there. */
  private dropTakenLeaves(
    c: ConversationRow,
    before: readonly { leafIndex: number; userId: string }[],
    kept: ReadonlySet<number>,
  ): void {
    const previous = c.state === undefined ? new Map<number, Uint8Array>() : leafIdentities(c.state);
    for (const m of before) {
      if (kept.has(m.leafIndex)) continue;
      this.store.db
        .delete(t.members)
        .where(and(eq(t.members.conversationId, c.id), eq(t.members.leafIndex, m.leafIndex)))
        .run();
      const identity = previous.get(m.leafIndex);
      if (identity !== undefined) this.rememberFormerMember(c.id, identity, m.userId);
    }
  }

  /** Names the users of leaves not `kept` by the client infos that open and verify for them. */
  private attributeNewLeaves(
    c: ConversationRow,
    leaves: Map<number, Uint8Array>,
    kept: ReadonlySet<number>,
    infos: Uint8Array[],
  ): void {
    for (const { leafIndex, identity, opened } of openNewLeaves(c, leaves, kept, infos)) {
      let user: string | undefined;
      try {
        // The joiner's credential chains to the AS of its own domain (see learnJoinerCredentials).
        const credential = this.trust.verifier.verifyClientCredential(opened.clientCredential);
        LeafCredential.decode(identity).verifyWith(credential, opened.signatureEncryptionKey);
        user = formatUserId(credential.clientId.userId);
      } catch {
        // A client info that does not verify names nobody: the leaf stays unattributed.
      }
      if (user !== undefined) this.add(c.id, leafIndex, user);
    }
  }

  /**
   * System messages for the users a commit added and removed (or who left): one event per kind,
   * naming everyone the commit concerned ("Bob added Carol and Dave").
   */
  private announceChanges(
    c: ConversationRow,
    before: ReadonlySet<string>,
    after: ReadonlySet<string>,
    committer: string | undefined,
  ): void {
    const self = this.identity.userId;
    const mine = committer === self;
    const added = [...after].filter((u) => !before.has(u) && u !== self);
    if (added.length > 0)
      this.conversations.insertEvent(
        c.id,
        c.kind === "connection"
          ? { type: "joined", users: added }
          : { type: "added", actor: committer, users: added },
        mine,
      );
    const gone = [...before].filter((u) => !after.has(u));
    const left = gone.filter((u) => this.takeLeaving(c.id, u));
    const removed = gone.filter((u) => !left.includes(u));
    if (left.length > 0) this.conversations.insertEvent(c.id, { type: "left", users: left }, mine);
    if (removed.length > 0)
      this.conversations.insertEvent(c.id, { type: "removed", actor: committer, users: removed }, mine);
  }

  /** Opens a member's encrypted client info and checks it belongs to the leaf; its user id. */
  private userOfClientInfo(
    state: ClientState,
    leafIndex: number,
    info: Uint8Array,
    credentialKey: Uint8Array,
  ): string | undefined {
    const identity = leafIdentities(state).get(leafIndex);
    if (identity === undefined || info.length === 0) return undefined;
    const opened = openClientInfo(credentialKey, "group", identity, info);
    const credential = this.trust.verifier.verifyClientCredential(opened.clientCredential);
    LeafCredential.decode(identity).verifyWith(credential, opened.signatureEncryptionKey);
    return formatUserId(credential.clientId.userId);
  }

  /**
   * Keeps who sat on a leaf a commit took away: a message of an earlier epoch (sent before the
   * commit, processed after it) names its sender by that epoch's tree.
   */
  private rememberFormerMember(id: string, leafCredential: Uint8Array, userId: string): void {
    this.store.db
      .insert(t.formerMembers)
      .values({ conversationId: id, leafCredential: buf(leafCredential), userId })
      .onConflictDoUpdate({
        target: [t.formerMembers.conversationId, t.formerMembers.leafCredential],
        set: { userId },
      })
      .run();
  }

  /** Forgets former members no epoch with retained receiver keys (ts-mls) has in its tree. */
  private pruneFormerMembers(id: string, state: ClientState): void {
    const retained = new Set<string>();
    for (const epoch of state.historicalReceiverData.values())
      for (const identity of treeIdentities(epoch.ratchetTree).values()) retained.add(toHex(identity));
    for (const row of this.store.db
      .select()
      .from(t.formerMembers)
      .where(eq(t.formerMembers.conversationId, id))
      .all())
      if (!retained.has(toHex(u8(row.leafCredential))))
        this.store.db
          .delete(t.formerMembers)
          .where(
            and(
              eq(t.formerMembers.conversationId, id),
              eq(t.formerMembers.leafCredential, row.leafCredential),
            ),
          )
          .run();
  }
}

/** The leaves of `leaves` not `known` (attributed already), with the client info that opens for each. */
function openNewLeaves(
  c: ConversationRow,
  leaves: Map<number, Uint8Array>,
  known: ReadonlySet<number>,
  infos: Uint8Array[],
): OpenedLeaf[] {
  const out: OpenedLeaf[] = [];
  for (const [leafIndex, identity] of leaves) {
    if (known.has(leafIndex)) continue;
    for (const info of infos) {
      try {
        out.push({ leafIndex, identity, opened: openClientInfo(c.credentialKey, "group", identity, info) });
        break;
      } catch {
        // belongs to another leaf
      }
    }
  }
  return out;
}

/**
 * The attributed leaves (rows of `before`) a commit leaves in place: still occupied by the same
 * leaf credential in `leaves`. A commit may blank a leaf and fill it with a joiner (removes apply
 * before adds), so an occupied leaf is not enough: the old row would name the wrong user.
 */
function keptLeaves(
  c: ConversationRow,
  leaves: ReadonlyMap<number, Uint8Array>,
  before: readonly { leafIndex: number }[],
): Set<number> {
  const previous = c.state === undefined ? undefined : leafIdentities(c.state);
  const kept = new Set<number>();
  for (const { leafIndex } of before) {
    const now = leaves.get(leafIndex);
    const was = previous?.get(leafIndex);
    if (now !== undefined && (was === undefined || bytesEqual(was, now))) kept.add(leafIndex);
  }
  return kept;
}
