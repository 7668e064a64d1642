// The conversations table and its messages: a conversation's row (keys, MLS state, own leaf),
// the view apps read, and when this client last refreshed its leaf there.
import { type LeafCredential, SigningKey } from "@phoenix/crypto";
import { decodeClientState, encodeClientState } from "@phoenix/mls";
import type { common } from "@phoenix/proto";
import { and, eq } from "drizzle-orm";
import type { ClientState } from "ts-mls";
import { ConversationInactiveError, UnknownConversationError } from "../errors.js";
import { signRequest } from "../protocol/helpers.js";
import { buf, type ClientStore, u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { Conversation } from "../types.js";

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

/** What a new conversation row is made of. */
export interface NewConversation {
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
}

/** The conversation's MLS state; ConversationInactiveError when this client has none (left). */
export function stateOf(c: ConversationRow): ClientState {
  if (c.state === undefined) throw new ConversationInactiveError(`conversation ${c.id} has no group state`);
  return c.state;
}

/** This client's leaf index in the conversation's group. */
export function leafOf(c: ConversationRow): number {
  return stateOf(c).privatePath.leafIndex;
}

/** A request to the conversation's DS signed with this client's leaf key in the group. */
export function dsSigned<T extends { header: common.RequestHeader | undefined }>(
  c: ConversationRow,
  type: Parameters<typeof signRequest<T>>[0],
  method: { path: string },
  body: Omit<T, "header">,
): Promise<common.Signed> {
  return signRequest(type, method, body, c.leafKey, { $case: "leafIndex", value: leafOf(c) });
}

/** Conversation rows and their messages in the client's store. */
export class Conversations {
  constructor(private readonly store: ClientStore) {}

  insert(c: NewConversation): void {
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

  /** The conversation `id`, decoded; UnknownConversationError when there is none. */
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

  /** {@link row}, or ConversationInactiveError when the conversation is no longer active. */
  activeRow(id: string): ConversationRow {
    const c = this.row(id);
    if (c.status !== "active") throw new ConversationInactiveError(`conversation ${id} is no longer active`);
    return c;
  }

  /** The conversation as apps see it: members, unread count, when its keys were refreshed. */
  view(id: string): Conversation {
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
}
