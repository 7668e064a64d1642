// The state every flow works on (account, store, verifier, ciphersuite) and the helpers they share:
// request signing, conversation rows, membership bookkeeping, queue positions and ratchets.
import {
  bytesEqual,
  ClientCredential,
  type ClientCredential as ClientCredentialT,
  decodeFriendshipPackage,
  decodeQueueMessage,
  decryptUserProfile,
  encodeFriendshipPackage,
  expirationFrom,
  type FriendshipPackage,
  formatUserId,
  type HpkeKeyPair,
  HpkePublicKey,
  LeafCredential,
  openClientInfo,
  parseUserId,
  QueueRatchetReceiver,
  SigningKey,
  sealQueueConfig,
  toHex,
  type UserId,
  userProfileKeyIndex,
} from "@phoenix/crypto";
import {
  createKeyPackage,
  createNodeCryptoProvider,
  decodeClientState,
  encodeClientState,
  PHOENIX_CIPHERSUITE,
} from "@phoenix/mls";
import { auth, common, delivery, queue } from "@phoenix/proto";
import { and, eq } from "drizzle-orm";
import {
  type CiphersuiteImpl,
  type ClientState,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type KeyPackage,
  type PrivateKeyPackage,
} from "ts-mls";
import type { Account } from "./account.js";
import { ConversationInactiveError, UnknownConversationError } from "./errors.js";
import { DomainVerifier } from "./protocol/domain-verifier.js";
import { fromB64, signRequest, toB64, wireUserId } from "./protocol/helpers.js";
import { buf, type ClientStore, u8 } from "./store/client-store.js";
import * as t from "./store/schema.js";
import type { Transport } from "./transport.js";

import type { Conversation } from "./types.js";
export const DAY = 86_400_000;
export const NOT_FOUND = 5;
export const FAILED_PRECONDITION = 9;
export const UNAUTHENTICATED = 16;
export const CONNECTION_PACKAGES = 4;
export const ADD_PACKAGES = 4;

export const AS = auth.AuthServiceService;
export const DS = delivery.DeliveryServiceService;
export const QS = queue.QueueServiceService;

/** Everything a conversation row holds, decoded. */
export interface ConversationRow {
  id: string;
  groupId: common.QualifiedGroupId;
  kind: "group" | "connection";
  title: string;
  status: "active" | "inactive";
  earKey: Uint8Array;
  credentialKey: Uint8Array;
  profileKeyKey: Uint8Array;
  state: ClientState | undefined;
  leafKey: SigningKey;
  leafCredential: Uint8Array;
  signatureEncryptionKey: Uint8Array;
  peerUserId: string | null;
}

/** A freshly made leaf for one group: leaf credential, signature key and KeyPackage. */
export interface NewLeaf {
  leafKey: SigningKey;
  leaf: LeafCredential;
  signatureEncryptionKey: Uint8Array;
  keyPackage: KeyPackage;
  privateKeyPackage: PrivateKeyPackage;
}

let suite: Promise<CiphersuiteImpl> | undefined;
export function ciphersuite(): Promise<CiphersuiteImpl> {
  suite ??= getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
  return suite;
}

/** A Phoenix client: one device of one user, with its SQLite store. */

/**
 * The client's state and the helpers every flow shares: the account, the store, signing of
 * requests, conversation rows and membership bookkeeping. Internal: apps use PhoenixClient.
 */
export class ClientCore {
  constructor(
    readonly transport: Transport,
    readonly store: ClientStore,
    readonly account: Account,
    readonly cs: CiphersuiteImpl,
    readonly verifier: DomainVerifier,
  ) {}

  /**
   * Trusts `domain`'s AS credentials, fetched through this client's own AS (which relays other
   * domains' credentials); skipped when already known unless `refresh`.
   */
  async learnCredentials(domain: string, refresh = false): Promise<void> {
    if (!refresh && this.verifier.knows(domain)) return;
    const answer = await this.transport.auth.getAsCredentials({ domain });
    if (answer.domain !== domain)
      throw new Error(`asked for the AS credentials of ${domain}, got those of ${answer.domain}`);
    this.verifier.learn(answer);
  }

  /**
   * Runs `fn`; when it fails because a credential's domain has no (or no current) AS credentials
   * in the verifier, fetches them and runs `fn` again — at most once per domain. `fn` must leave
   * nothing behind when it throws (verify before writing, or write in one store transaction).
   */
  async withCredentials<T>(fn: () => T | Promise<T>): Promise<T> {
    const fetched = new Set<string>();
    for (;;) {
      this.verifier.missing = undefined;
      try {
        return await fn();
      } catch (error) {
        const domain = this.verifier.missing;
        if (domain === undefined || fetched.has(domain)) throw error;
        fetched.add(domain);
        await this.learnCredentials(domain, true);
      }
    }
  }

  /** This user's id, `uuid@domain`. */
  get userId(): string {
    return formatUserId(this.user);
  }

  get user(): UserId {
    return { uuid: this.account.userUuid, domain: this.account.domain };
  }

  get clientKey(): SigningKey {
    return SigningKey.fromSeed(this.account.clientKeySeed);
  }

  get credential(): ClientCredentialT {
    return ClientCredential.decode(this.account.clientCredential);
  }

  get friendshipPackage(): FriendshipPackage {
    return {
      friendshipToken: this.account.friendshipToken,
      friendshipEncryptionKey: this.account.friendshipEncryptionKey,
      userProfileKey: this.account.profileKey,
    };
  }

  /** A fresh sealed queue config naming this client's QS queue (what the DS stores per member). */
  qsReference(): common.QsReference {
    return {
      domain: this.account.domain,
      sealedQueueConfig: sealQueueConfig({
        qsKey: HpkePublicKey.fromBytes(this.account.qsConfigKey),
        domain: this.account.domain,
        clientRecordId: this.account.qsClientId,
        recordKey: SigningKey.fromSeed(this.account.qsClientKeySeed),
      }),
    };
  }

  /** A new leaf: fresh signature key, a fresh pseudonym (unlinkable across groups), a KeyPackage. */
  async newLeaf(lastResort = false): Promise<NewLeaf> {
    const leafKey = SigningKey.generate();
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: this.clientKey,
      clientCredential: this.credential,
      leafKey: leafKey.verifyingKey,
      expiration: expirationFrom(Date.now(), 60 * DAY),
    });
    const kp = await createKeyPackage({
      cipherSuite: this.cs,
      credential: { credentialType: "basic", identity: leaf.bytes },
      queueConfig: common.QsReference.encode(this.qsReference()).finish(),
      lastResort,
      lifetimeSeconds: 59 * 24 * 3600,
      signatureKeyPair: { signKey: leafKey.exportSeed(), publicKey: leafKey.publicKey },
    });
    return {
      leafKey,
      leaf,
      signatureEncryptionKey,
      keyPackage: kp.publicPackage,
      privateKeyPackage: kp.privatePackage,
    };
  }

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
    const before = this.store.db.select().from(t.members).where(eq(t.members.conversationId, c.id)).all();
    const beforeUsers = new Set(before.map((m) => m.userId));
    const leaves = leafIdentities(state);
    const kept = keptLeaves(c, leaves, before);
    const previous = c.state === undefined ? new Map<number, Uint8Array>() : leafIdentities(c.state);
    for (const m of before) {
      if (kept.has(m.leafIndex)) continue;
      this.deleteMember(c.id, m.leafIndex);
      const identity = previous.get(m.leafIndex);
      if (identity !== undefined) this.rememberFormerMember(c.id, identity, m.userId);
    }
    this.pruneFormerMembers(c.id, state);
    for (const { leafIndex, identity, opened } of this.openNewLeaves(c, leaves, kept, infos)) {
      let user: string | undefined;
      try {
        // The joiner's credential chains to the AS of its own domain (see learnJoinerCredentials).
        const credential = this.verifier.verifyClientCredential(opened.clientCredential);
        LeafCredential.decode(identity).verifyWith(credential, opened.signatureEncryptionKey);
        user = formatUserId(credential.clientId.userId);
      } catch {
        // A client info that does not verify names nobody: the leaf stays unattributed.
      }
      if (user !== undefined)
        this.store.db.insert(t.members).values({ conversationId: c.id, leafIndex, userId: user }).run();
    }
    const after = new Set(
      this.store.db
        .select()
        .from(t.members)
        .where(eq(t.members.conversationId, c.id))
        .all()
        .map((m) => m.userId),
    );
    const by = committer ?? "someone";
    const mine = committer === this.userId;
    for (const u of after)
      if (!beforeUsers.has(u) && u !== this.userId) {
        const text = c.kind === "connection" ? `${u} joined` : `${by} added ${u}`;
        this.insertMessage(c.id, "system", committer, text, mine);
      }
    for (const u of beforeUsers)
      if (!after.has(u)) {
        const left = this.takeLeaving(c.id, u);
        this.insertMessage(c.id, "system", committer, left ? `${u} left` : `${by} removed ${u}`, mine);
      }
  }

  /**
   * Fetches the AS credentials {@link applyMembership} will need for the leaves a commit adds
   * (their domains may be new to this client, or their intermediates newer). Call it before the
   * store transaction that applies the commit.
   */
  async learnJoinerCredentials(c: ConversationRow, state: ClientState, infos: Uint8Array[]): Promise<void> {
    if (infos.length === 0) return;
    const before = this.store.db.select().from(t.members).where(eq(t.members.conversationId, c.id)).all();
    const leaves = leafIdentities(state);
    for (const { opened } of this.openNewLeaves(c, leaves, keptLeaves(c, leaves, before), infos)) {
      const domain = opened.clientCredential.clientId.userId.domain;
      await this.learnCredentials(domain);
      this.verifier.missing = undefined;
      try {
        this.verifier.verifyClientCredential(opened.clientCredential);
      } catch {
        if (this.verifier.missing === domain) await this.learnCredentials(domain, true);
      }
    }
  }

  /** The leaves of `leaves` not `known` (attributed already), with the client info that opens for each. */
  private openNewLeaves(
    c: ConversationRow,
    leaves: Map<number, Uint8Array>,
    known: ReadonlySet<number>,
    infos: Uint8Array[],
  ): { leafIndex: number; identity: Uint8Array; opened: ReturnType<typeof openClientInfo> }[] {
    const out: { leafIndex: number; identity: Uint8Array; opened: ReturnType<typeof openClientInfo> }[] = [];
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

  deleteMember(id: string, leafIndex: number): void {
    this.store.db
      .delete(t.members)
      .where(and(eq(t.members.conversationId, id), eq(t.members.leafIndex, leafIndex)))
      .run();
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

  /** Opens a member's encrypted client info and checks it belongs to the leaf; its user id. */
  userOfClientInfo(
    state: ClientState,
    leafIndex: number,
    info: Uint8Array,
    credentialKey: Uint8Array,
  ): string | undefined {
    const identity = leafIdentities(state).get(leafIndex);
    if (identity === undefined || info.length === 0) return undefined;
    const opened = openClientInfo(credentialKey, "group", identity, info);
    const credential = this.verifier.verifyClientCredential(opened.clientCredential);
    LeafCredential.decode(identity).verifyWith(credential, opened.signatureEncryptionKey);
    return formatUserId(credential.clientId.userId);
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
      if (user !== undefined)
        this.store.db
          .insert(t.members)
          .values({ conversationId: id, leafIndex: m.leafIndex, userId: user })
          .run();
    }
  }

  memberAt(id: string, leafIndex: number): string | undefined {
    return this.store.db
      .select()
      .from(t.members)
      .where(and(eq(t.members.conversationId, id), eq(t.members.leafIndex, leafIndex)))
      .get()?.userId;
  }

  leavesOf(id: string, userIds: readonly string[]): number[] {
    return this.store.db
      .select()
      .from(t.members)
      .where(eq(t.members.conversationId, id))
      .all()
      .filter((m) => userIds.includes(m.userId))
      .map((m) => m.leafIndex);
  }

  upsertContact(userId: string, fp: FriendshipPackage, conversationId: string): void {
    const value = buf(encodeFriendshipPackage(fp));
    this.store.db
      .insert(t.contacts)
      .values({ userId, friendshipPackage: value, conversationId })
      .onConflictDoUpdate({ target: t.contacts.userId, set: { friendshipPackage: value, conversationId } })
      .run();
  }

  async refreshProfile(userId: string): Promise<void> {
    const c = this.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
    if (c === undefined) return;
    const fp = decodeFriendshipPackage(u8(c.friendshipPackage));
    const name = await this.fetchDisplayName(parseUserId(userId), fp.userProfileKey).catch(() => undefined);
    if (name === undefined) return;
    this.store.transaction(() => {
      this.store.db.update(t.contacts).set({ displayName: name }).where(eq(t.contacts.userId, userId)).run();
      this.store.db
        .update(t.conversations)
        .set({ title: name })
        .where(and(eq(t.conversations.id, c.conversationId), eq(t.conversations.kind, "connection")))
        .run();
    });
  }

  async fetchDisplayName(userId: UserId, profileKey: Uint8Array): Promise<string | undefined> {
    const res = await this.transport.auth.getUserProfile({
      userId: wireUserId(userId),
      keyIndex: userProfileKeyIndex(profileKey, userId),
    });
    const profile = JSON.parse(
      new TextDecoder().decode(decryptUserProfile(profileKey, userId, res.encryptedUserProfile)),
    ) as {
      displayName?: unknown;
    };
    return typeof profile.displayName === "string" ? profile.displayName : undefined;
  }

  insertConversation(c: {
    id: string;
    groupId: common.QualifiedGroupId;
    kind: "group" | "connection";
    title: string;
    earKey: Uint8Array;
    credentialKey: Uint8Array;
    profileKeyKey: Uint8Array;
    state: ClientState;
    leaf: {
      leafKey: SigningKey;
      leafCredential?: Uint8Array;
      leaf?: LeafCredential;
      signatureEncryptionKey: Uint8Array;
    };
    peerUserId: string | null;
  }): void {
    const leafCredential = c.leaf.leafCredential ?? c.leaf.leaf?.bytes;
    if (leafCredential === undefined) throw new Error("leaf credential missing");
    this.store.db
      .insert(t.conversations)
      .values({
        id: c.id,
        groupUuid: buf(c.groupId.uuid),
        groupDomain: c.groupId.domain,
        kind: c.kind,
        title: c.title,
        status: "active",
        earKey: buf(c.earKey),
        credentialKey: buf(c.credentialKey),
        profileKeyKey: buf(c.profileKeyKey),
        mlsState: buf(encodeClientState(c.state)),
        leafSeed: buf(c.leaf.leafKey.exportSeed()),
        leafCredential: buf(leafCredential),
        signatureEncryptionKey: buf(c.leaf.signatureEncryptionKey),
        peerUserId: c.peerUserId,
        createdAt: Date.now(),
      })
      .run();
  }

  insertMessage(
    id: string,
    kind: "text" | "system",
    sender: string | undefined,
    body: string,
    read: boolean,
  ): void {
    this.store.db
      .insert(t.messages)
      .values({ conversationId: id, kind, senderUserId: sender ?? null, body, sentAt: Date.now(), read })
      .run();
  }

  /** Stores a conversation's MLS state, and its new EAR key when a removal rotated it. */
  saveState(id: string, state: ClientState, earKey?: Uint8Array): void {
    this.store.db
      .update(t.conversations)
      .set({
        mlsState: buf(encodeClientState(state)),
        ...(earKey === undefined ? {} : { earKey: buf(earKey) }),
      })
      .where(eq(t.conversations.id, id))
      .run();
  }

  setInactive(id: string): void {
    this.store.db.update(t.conversations).set({ status: "inactive" }).where(eq(t.conversations.id, id)).run();
  }

  row(id: string): ConversationRow {
    const r = this.store.db.select().from(t.conversations).where(eq(t.conversations.id, id)).get();
    if (r === undefined) throw new UnknownConversationError(`no conversation ${id}`);
    return {
      id: r.id,
      groupId: { uuid: u8(r.groupUuid), domain: r.groupDomain },
      kind: r.kind,
      title: r.title,
      status: r.status,
      earKey: u8(r.earKey),
      credentialKey: u8(r.credentialKey),
      profileKeyKey: u8(r.profileKeyKey),
      state: r.mlsState === null ? undefined : decodeClientState(u8(r.mlsState)),
      leafKey: SigningKey.fromSeed(u8(r.leafSeed)),
      leafCredential: u8(r.leafCredential),
      signatureEncryptionKey: u8(r.signatureEncryptionKey),
      peerUserId: r.peerUserId,
    };
  }

  activeRow(id: string): ConversationRow {
    const c = this.row(id);
    if (c.status !== "active") throw new ConversationInactiveError(`conversation ${id} is no longer active`);
    return c;
  }

  stateOf(c: ConversationRow): ClientState {
    if (c.state === undefined) throw new ConversationInactiveError(`conversation ${c.id} has no group state`);
    return c.state;
  }

  leafOf(c: ConversationRow): number {
    return this.stateOf(c).privatePath.leafIndex;
  }

  conversationView(id: string): Conversation {
    const c = this.store.db.select().from(t.conversations).where(eq(t.conversations.id, id)).get();
    if (c === undefined) throw new UnknownConversationError(`no conversation ${id}`);
    const members = [
      ...new Set(
        this.store.db
          .select()
          .from(t.members)
          .where(eq(t.members.conversationId, id))
          .all()
          .map((m) => m.userId),
      ),
    ];
    const unread = this.store.db
      .select()
      .from(t.messages)
      .where(and(eq(t.messages.conversationId, id), eq(t.messages.read, false)))
      .all().length;
    return {
      id,
      kind: c.kind,
      title: c.title,
      status: c.status,
      members: c.status === "active" ? members : [],
      unread,
      keysUpdatedAt: new Date(this.keysUpdatedAt(c)),
    };
  }

  /** When this client last refreshed its leaf in a conversation: its last update, else the join. */
  keysUpdatedAt(conversation: { id: string; createdAt: number }): number {
    return this.store.getJson<number>(`keys-updated:${conversation.id}`) ?? conversation.createdAt;
  }

  /** Remembers that this client refreshed its leaf in `conversationId` at `at` (ms). */
  recordKeyUpdate(conversationId: string, at: number): void {
    this.store.setJson(`keys-updated:${conversationId}`, at);
  }

  asSigned<T extends { header: common.RequestHeader | undefined }>(
    type: Parameters<typeof signRequest<T>>[0],
    method: { path: string },
    body: Omit<T, "header">,
  ): Promise<common.Signed> {
    const sender = {
      $case: "client" as const,
      value: { user: wireUserId(this.user), clientUuid: this.account.clientUuid },
    };
    return signRequest(type, method, body, this.clientKey, sender);
  }

  qsSigned<T extends { header: common.RequestHeader | undefined }>(
    type: Parameters<typeof signRequest<T>>[0],
    method: { path: string },
    body: Omit<T, "header">,
  ): Promise<common.Signed> {
    return signRequest(type, method, body, SigningKey.fromSeed(this.account.qsClientKeySeed), {
      $case: "qsClientId",
      value: this.account.qsClientId,
    });
  }

  dsSigned<T extends { header: common.RequestHeader | undefined }>(
    c: ConversationRow,
    type: Parameters<typeof signRequest<T>>[0],
    method: { path: string },
    body: Omit<T, "header">,
  ): Promise<common.Signed> {
    return signRequest(type, method, body, c.leafKey, { $case: "leafIndex", value: this.leafOf(c) });
  }

  seq(queueName: string): bigint {
    return BigInt(this.store.getJson<string>(`${queueName}.next`) ?? "0");
  }

  /**
   * Decrypts one queue message with the queue ratchet (message 0 starts it) and advances the stored
   * sequence number and ratchet, so a message is never processed twice.
   */
  openQueueMessage(
    queueName: string,
    key: HpkeKeyPair,
    context: Uint8Array,
    m: common.QueueMessage,
  ): common.QueuePayload | undefined {
    const decoded = decodeQueueMessage(m.ciphertext);
    const stored = this.store.getBytes(`${queueName}.ratchet`);
    let payload: common.QueuePayload | undefined;
    let receiver: QueueRatchetReceiver;
    if (stored === undefined) {
      receiver = QueueRatchetReceiver.fromInit(key, context, decoded);
    } else {
      receiver = QueueRatchetReceiver.fromBytes(stored);
      const out = receiver.decrypt(decoded, key);
      if (out.kind === "message") payload = common.QueuePayload.decode(out.payload);
    }
    this.store.transaction(() => {
      this.store.setBytes(`${queueName}.ratchet`, receiver.toBytes());
      this.store.setJson(`${queueName}.next`, (m.sequenceNumber + 1n).toString());
    });
    return payload;
  }

  storedHandles(): { handle: string; keySeed: string; queueKey: string }[] {
    return this.store.getJson<{ handle: string; keySeed: string; queueKey: string }[]>("handles") ?? [];
  }
}

/** A verifier trusting the AS credentials of the transport's own homeserver (domain `""`). */
export async function fetchVerifier(transport: Transport): Promise<DomainVerifier> {
  const verifier = new DomainVerifier();
  verifier.learn(await transport.auth.getAsCredentials({ domain: "" }));
  return verifier;
}

export function profileBytes(displayName: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ displayName }));
}

export function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Leaf index → leaf credential bytes (MLS Basic identity) of every non-blank leaf. */
export function leafIdentities(state: ClientState): Map<number, Uint8Array> {
  return treeIdentities(state.ratchetTree);
}

/** {@link leafIdentities} of any ratchet tree (a retained epoch's, say). */
export function treeIdentities(tree: ClientState["ratchetTree"]): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  tree.forEach((node, i) => {
    if (i % 2 === 0 && node?.nodeType === "leaf" && node.leaf.credential.credentialType === "basic")
      out.set(i / 2, node.leaf.credential.identity);
  });
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

export function safeCommitAad(aad: Uint8Array | undefined): delivery.CommitAad | undefined {
  if (aad === undefined || aad.length === 0) return undefined;
  try {
    return delivery.CommitAad.decode(aad);
  } catch {
    return undefined;
  }
}

/** A verified connection offer as kept until the user decides. */
export interface StoredOffer {
  senderCredential: ClientCredentialT;
  groupId: Uint8Array;
  earKey: Uint8Array;
  credentialKey: Uint8Array;
  friendshipPackage: FriendshipPackage;
}

export function encodeStoredOffer(o: StoredOffer): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      senderCredential: toB64(o.senderCredential.bytes),
      groupId: toB64(o.groupId),
      earKey: toB64(o.earKey),
      credentialKey: toB64(o.credentialKey),
      friendshipPackage: toB64(encodeFriendshipPackage(o.friendshipPackage)),
    }),
  );
}

export function decodeStoredOffer(bytes: Uint8Array): StoredOffer {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string>;
  return {
    senderCredential: ClientCredential.decode(fromB64(j.senderCredential ?? "")),
    groupId: fromB64(j.groupId ?? ""),
    earKey: fromB64(j.earKey ?? ""),
    credentialKey: fromB64(j.credentialKey ?? ""),
    friendshipPackage: decodeFriendshipPackage(fromB64(j.friendshipPackage ?? "")),
  };
}

export function encodePrivateKeyPackage(p: PrivateKeyPackage): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      initPrivateKey: toB64(p.initPrivateKey),
      hpkePrivateKey: toB64(p.hpkePrivateKey),
      signaturePrivateKey: toB64(p.signaturePrivateKey),
    }),
  );
}

export function decodePrivateKeyPackage(bytes: Uint8Array): PrivateKeyPackage {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, string>;
  return {
    initPrivateKey: fromB64(j.initPrivateKey ?? ""),
    hpkePrivateKey: fromB64(j.hpkePrivateKey ?? ""),
    signaturePrivateKey: fromB64(j.signaturePrivateKey ?? ""),
  };
}
