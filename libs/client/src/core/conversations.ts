// The conversations table and its messages: a conversation's row (keys, MLS state, own leaf),
// the view apps read, and when this client last refreshed its leaf there.
import { constantTimeEqual, type LeafCredential, SigningKey } from "@phoenix/crypto";
import { decodeClientState, encodeClientState } from "@phoenix/mls";
import type { common } from "@phoenix/proto";
import { and, eq, sql } from "drizzle-orm";
import type { ClientState } from "ts-mls";
import { ConversationInactiveError, UnknownConversationError } from "../errors.js";
import { describeEvent, type StoredEvent } from "../events.js";
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

/** What {@link Conversations} keeps in memory of a recently used conversation. */
interface Decoded {
  /** The stored MLS state's bytes and that state, decoded; reused only while the row holds them. */
  stateBytes?: Uint8Array;
  state?: ClientState;
  /** The stored leaf seed and its imported key. */
  leafSeed: Uint8Array;
  leafKey: SigningKey;
}

/** How many conversations keep their decoded state and leaf key in memory. */
const DECODED_CONVERSATIONS = 256;

/** Conversation rows and their messages in the client's store. */
export class Conversations {
  /**
   * Decoded MLS states and imported leaf keys, by conversation id (LRU). Decoding a group's
   * state and importing its leaf key cost more than the message they serve, so the state a
   * flow saved is kept as it was. It is used only while the row's stored bytes are still the
   * ones it was encoded to (compared on every read): a state saved in a transaction that then
   * rolled back, or written by another process on the same file, is decoded afresh instead. The
   * client is the trusted party, and ts-mls never mutates a state in place (each operation
   * returns a new one), so the kept object is the stored state.
   */
  private readonly decoded = new Map<string, Decoded>();

  /** The queries every message makes, prepared once. */
  private readonly byId;
  private readonly updateState;
  private readonly updateStateAndEarKey;
  private readonly addMessage;

  constructor(private readonly store: ClientStore) {
    const id = eq(t.conversations.id, sql.placeholder("id"));
    this.byId = store.db.select().from(t.conversations).where(id).prepare();
    this.updateState = store.db
      .update(t.conversations)
      .set({ mlsState: sql`${sql.placeholder("mlsState")}` })
      .where(id)
      .prepare();
    this.updateStateAndEarKey = store.db
      .update(t.conversations)
      .set({ mlsState: sql`${sql.placeholder("mlsState")}`, earKey: sql`${sql.placeholder("earKey")}` })
      .where(id)
      .prepare();
    this.addMessage = store.db
      .insert(t.messages)
      .values({
        conversationId: sql.placeholder("conversationId"),
        kind: sql.placeholder("kind"),
        senderUserId: sql.placeholder("senderUserId"),
        body: sql.placeholder("body"),
        event: sql.placeholder("event"),
        sentAt: sql.placeholder("sentAt"),
        read: sql.placeholder("read"),
      })
      .prepare();
  }

  insert(c: NewConversation): void {
    const leafCredential = c.leaf.leafCredential ?? c.leaf.leaf?.bytes;
    if (leafCredential === undefined) throw new Error("leaf credential missing");
    const stateBytes = encodeClientState(c.state);
    const leafSeed = c.leaf.leafKey.exportSeed();
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
        mlsState: buf(stateBytes),
        leafSeed: buf(leafSeed),
        leafCredential: buf(leafCredential),
        signatureEncryptionKey: buf(c.leaf.signatureEncryptionKey),
        peerUserId: c.peerUserId,
        createdAt: Date.now(),
      })
      .run();
    this.keep(c.id, { stateBytes, state: c.state, leafSeed, leafKey: c.leaf.leafKey });
  }

  insertMessage(
    id: string,
    kind: "text" | "system",
    sender: string | undefined,
    body: string,
    read: boolean,
    event?: StoredEvent,
  ): void {
    // A boolean column, bound as what SQLite stores (0/1).
    this.addMessage.run({
      conversationId: id,
      kind,
      senderUserId: sender ?? null,
      body,
      event: event === undefined ? null : JSON.stringify(event),
      sentAt: Date.now(),
      read: read ? 1 : 0,
    });
  }

  /**
   * Stores a system message for `event` (its actor as sender). The stored body names people by
   * user id; reads render the event with the names known then.
   */
  insertEvent(id: string, event: StoredEvent, read: boolean): void {
    const person = (userId: string) => ({ userId, displayName: undefined, self: false });
    const body = describeEvent({
      type: event.type,
      actor: event.actor === undefined ? undefined : person(event.actor),
      users: event.users.map(person),
      previousName: event.previousName,
    });
    this.insertMessage(id, "system", event.actor, body, read, event);
  }

  /** Stores a conversation's MLS state, and its new EAR key when a removal rotated it. */
  saveState(id: string, state: ClientState, earKey?: Uint8Array): void {
    const stateBytes = encodeClientState(state);
    if (earKey === undefined) this.updateState.run({ id, mlsState: buf(stateBytes) });
    else this.updateStateAndEarKey.run({ id, mlsState: buf(stateBytes), earKey: buf(earKey) });
    const kept = this.decoded.get(id);
    if (kept !== undefined) this.keep(id, { ...kept, stateBytes, state });
  }

  setInactive(id: string): void {
    this.store.db.update(t.conversations).set({ status: "inactive" }).where(eq(t.conversations.id, id)).run();
  }

  /** The conversation `id`, decoded; UnknownConversationError when there is none. */
  row(id: string): ConversationRow {
    const r = this.byId.get({ id });
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
      ...this.decode(r.id, r.mlsState, r.leafSeed),
      leafCredential: u8(r.leafCredential),
      signatureEncryptionKey: u8(r.signatureEncryptionKey),
      peerUserId: r.peerUserId,
    };
  }

  /** The row's MLS state and leaf key: the kept ones while the row still holds their bytes. */
  private decode(
    id: string,
    mlsState: Buffer | null,
    leafSeed: Buffer,
  ): { state: ClientState | undefined; leafKey: SigningKey } {
    const kept = this.decoded.get(id);
    const sameLeaf = kept !== undefined && constantTimeEqual(kept.leafSeed, leafSeed);
    const leaf = sameLeaf ? kept : { leafSeed: u8(leafSeed), leafKey: SigningKey.fromSeed(u8(leafSeed)) };
    if (mlsState === null) {
      this.keep(id, { leafSeed: leaf.leafSeed, leafKey: leaf.leafKey });
      return { state: undefined, leafKey: leaf.leafKey };
    }
    if (
      sameLeaf &&
      kept.state !== undefined &&
      kept.stateBytes !== undefined &&
      constantTimeEqual(kept.stateBytes, mlsState)
    ) {
      this.keep(id, kept);
      return { state: kept.state, leafKey: kept.leafKey };
    }
    const stateBytes = u8(mlsState);
    const state = decodeClientState(stateBytes);
    this.keep(id, { stateBytes, state, leafSeed: leaf.leafSeed, leafKey: leaf.leafKey });
    return { state, leafKey: leaf.leafKey };
  }

  /** Keeps a conversation's decoded parts as the most recently used. */
  private keep(id: string, entry: Decoded): void {
    this.decoded.delete(id);
    this.decoded.set(id, entry);
    if (this.decoded.size > DECODED_CONVERSATIONS) {
      const oldest = this.decoded.keys().next().value;
      if (oldest !== undefined) this.decoded.delete(oldest);
    }
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
