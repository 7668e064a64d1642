import type { Database } from "@phoenix/runtime/db";
import { and, eq, sql } from "drizzle-orm";
import { userProfiles, users } from "./schema.js";

/** Creates a user; false when the uuid is taken. */
export async function insertUser(db: Database, userUuid: Uint8Array): Promise<boolean> {
  const rows = await db
    .insert(users)
    .values({ userUuid })
    .onConflictDoNothing()
    .returning({ userUuid: users.userUuid });
  return rows.length > 0;
}

/** Deletes a user and, by cascade, its profiles, clients, packages and queues; false if unknown. */
export async function deleteUser(db: Database, userUuid: Uint8Array): Promise<boolean> {
  const rows = await db
    .delete(users)
    .where(eq(users.userUuid, userUuid))
    .returning({ userUuid: users.userUuid });
  return rows.length > 0;
}

/** Writes the profile in `slot` (replacing what was there). */
export async function putProfile(
  db: Database,
  userUuid: Uint8Array,
  slot: "current" | "staged",
  keyIndex: Uint8Array,
  profile: Uint8Array,
): Promise<void> {
  await db
    .insert(userProfiles)
    .values({ userUuid, slot, keyIndex, profile })
    .onConflictDoUpdate({
      target: [userProfiles.userUuid, userProfiles.slot],
      set: { keyIndex, profile },
    });
}

/** The profile of a user with the given key index (current or staged), if any. */
export async function findProfile(
  db: Database,
  userUuid: Uint8Array,
  keyIndex: Uint8Array,
): Promise<Uint8Array | undefined> {
  const rows = await db
    .select({ profile: userProfiles.profile })
    .from(userProfiles)
    .where(and(eq(userProfiles.userUuid, userUuid), eq(userProfiles.keyIndex, keyIndex)))
    .orderBy(sql`${userProfiles.slot} = 'current' DESC`)
    .limit(1);
  return rows[0]?.profile;
}

/** Makes the staged profile current; false when nothing is staged. */
export async function mergeProfile(db: Database, userUuid: Uint8Array): Promise<boolean> {
  const staged = await db
    .select()
    .from(userProfiles)
    .where(and(eq(userProfiles.userUuid, userUuid), eq(userProfiles.slot, "staged")))
    .for("update");
  const row = staged[0];
  if (!row) return false;
  await db.delete(userProfiles).where(eq(userProfiles.userUuid, userUuid));
  await db.insert(userProfiles).values({ ...row, slot: "current" });
  return true;
}

/** True when the user exists. */
export async function userExists(db: Database, userUuid: Uint8Array): Promise<boolean> {
  const rows = await db
    .select({ userUuid: users.userUuid })
    .from(users)
    .where(eq(users.userUuid, userUuid))
    .limit(1);
  return rows.length > 0;
}
