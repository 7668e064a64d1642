// Profiles of the people this client meets: group members (contacts or not), connection
// requesters and contacts. A user's profile is encrypted on the AS under its user profile key;
// the key reaches this client through a group (encrypted under the group's profile-key key,
// stored by the DS), a connection offer or a friendship package. Names are cached here so the
// app's reads stay synchronous; flows refresh them when a key or a profile changes.
import {
  bytesEqual,
  decodeFriendshipPackage,
  decryptUserProfile,
  parseUserId,
  userProfileKeyIndex,
} from "@phoenix/crypto";
import { and, eq } from "drizzle-orm";
import type { Account } from "../account.js";
import { wireUserId } from "../protocol/helpers.js";
import { buf, type ClientStore, u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { Transport } from "../transport.js";

/** The profiles table: users' profile keys and the display names read with them. */
export class Profiles {
  constructor(
    private readonly transport: Transport,
    private readonly store: ClientStore,
    private readonly account: Account,
    private readonly selfUserId: string,
  ) {}

  /**
   * The display name of `userId` as far as this client knows it: its own, a fetched profile,
   * a contact's. Undefined when no profile could be read yet.
   */
  nameOf(userId: string): string | undefined {
    if (userId === this.selfUserId) return this.account.displayName;
    const p = this.store.db.select().from(t.profiles).where(eq(t.profiles.userId, userId)).get();
    if (p?.displayName) return p.displayName;
    return (
      this.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get()?.displayName ??
      undefined
    );
  }

  /**
   * Records the profile key `userId` shared. True when it is new to this client (the cached
   * name, read with another key, is then stale).
   */
  rememberKey(userId: string, profileKey: Uint8Array): boolean {
    if (userId === this.selfUserId) return false;
    const p = this.store.db.select().from(t.profiles).where(eq(t.profiles.userId, userId)).get();
    if (p !== undefined && bytesEqual(u8(p.profileKey), profileKey)) return false;
    this.store.db
      .insert(t.profiles)
      .values({ userId, profileKey: buf(profileKey), displayName: p?.displayName ?? null })
      .onConflictDoUpdate({ target: t.profiles.userId, set: { profileKey: buf(profileKey) } })
      .run();
    return true;
  }

  /** The users whose key is known but whose profile was never read. */
  unfetched(): string[] {
    return this.store.db
      .select()
      .from(t.profiles)
      .all()
      .filter((p) => p.fetchedAt === null)
      .map((p) => p.userId);
  }

  /**
   * Fetches `userId`'s profile from the AS with the key it shared (its profiles row, else its
   * friendship package) and caches the name. Returns the name before and after; throws when the
   * AS has no profile under that key or it does not decrypt.
   */
  async refresh(userId: string): Promise<{ before: string | undefined; after: string | undefined }> {
    const key = this.keyOf(userId);
    const before = this.nameOf(userId);
    if (key === undefined) return { before, after: before };
    const id = parseUserId(userId);
    const res = await this.transport.auth.getUserProfile({
      userId: wireUserId(id),
      keyIndex: userProfileKeyIndex(key, id),
    });
    const profile = JSON.parse(
      new TextDecoder().decode(decryptUserProfile(key, id, res.encryptedUserProfile)),
    ) as { displayName?: unknown };
    const after = typeof profile.displayName === "string" ? profile.displayName : undefined;
    this.store.db
      .insert(t.profiles)
      .values({ userId, profileKey: buf(key), displayName: after ?? null, fetchedAt: Date.now() })
      .onConflictDoUpdate({
        target: t.profiles.userId,
        set: { displayName: after ?? null, fetchedAt: Date.now() },
      })
      .run();
    const contact = this.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
    if (after !== undefined && contact !== undefined) {
      // A contact's connection conversation is named after them (see Contacts.refreshProfile).
      this.store.db.update(t.contacts).set({ displayName: after }).where(eq(t.contacts.userId, userId)).run();
      this.store.db
        .update(t.conversations)
        .set({ title: after })
        .where(and(eq(t.conversations.id, contact.conversationId), eq(t.conversations.kind, "connection")))
        .run();
    }
    return { before, after };
  }

  private keyOf(userId: string): Uint8Array | undefined {
    const p = this.store.db.select().from(t.profiles).where(eq(t.profiles.userId, userId)).get();
    if (p !== undefined) return u8(p.profileKey);
    const c = this.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
    return c === undefined ? undefined : decodeFriendshipPackage(u8(c.friendshipPackage)).userProfileKey;
  }
}
