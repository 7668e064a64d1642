// Contacts: the friendship package each connected user shared, and their display names read
// from their encrypted profiles on the AS.
import {
  decodeFriendshipPackage,
  decryptUserProfile,
  encodeFriendshipPackage,
  type FriendshipPackage,
  parseUserId,
  type UserId,
  userProfileKeyIndex,
} from "@phoenix/crypto";
import { and, eq } from "drizzle-orm";
import { wireUserId } from "../protocol/helpers.js";
import { buf, type ClientStore, u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { Transport } from "../transport.js";

/** The contacts table and the profiles of the users in it. */
export class Contacts {
  constructor(
    private readonly transport: Transport,
    private readonly store: ClientStore,
  ) {}

  /** Records (or replaces) the friendship package `userId` shared in connection `conversationId`. */
  upsert(userId: string, fp: FriendshipPackage, conversationId: string): void {
    const value = buf(encodeFriendshipPackage(fp));
    this.store.db
      .insert(t.contacts)
      .values({ userId, friendshipPackage: value, conversationId })
      .onConflictDoUpdate({ target: t.contacts.userId, set: { friendshipPackage: value, conversationId } })
      .run();
  }

  /** Fetches a contact's display name and names its connection conversation after it (best effort). */
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

  /** A user's display name, from its profile on the AS decrypted with its user profile key. */
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
}
