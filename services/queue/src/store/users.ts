import type { Database } from "@phoenix/runtime/db";
import { eq } from "drizzle-orm";
import { qsUsers } from "./schema.js";

export type UserRow = typeof qsUsers.$inferSelect;

/** The user record with `userId`, or undefined. */
export async function findUser(db: Database, userId: Uint8Array, lock = false): Promise<UserRow | undefined> {
  const query = db.select().from(qsUsers).where(eq(qsUsers.userId, userId));
  const [row] = lock ? await query.for("update") : await query;
  return row;
}

/** The user record holding the friendship token with this lookup hash. */
export async function findUserByTokenHash(db: Database, hash: Uint8Array): Promise<UserRow | undefined> {
  const [row] = await db.select().from(qsUsers).where(eq(qsUsers.friendshipTokenHash, hash));
  return row;
}

/** Inserts a user record (a taken friendship token hash fails with a unique violation). */
export async function insertUser(db: Database, row: typeof qsUsers.$inferInsert): Promise<void> {
  await db.insert(qsUsers).values(row);
}

/** Replaces a user record's auth key and friendship token (hash and sealed copy). */
export async function updateUserKeys(
  db: Database,
  userId: Uint8Array,
  set: Pick<UserRow, "authKey" | "friendshipTokenHash" | "encryptedFriendshipToken">,
): Promise<void> {
  await db.update(qsUsers).set(set).where(eq(qsUsers.userId, userId));
}

/** Deletes a user record; its client records, queues and AddPackages go with it (cascade). */
export async function deleteUser(db: Database, userId: Uint8Array): Promise<void> {
  await db.delete(qsUsers).where(eq(qsUsers.userId, userId));
}
