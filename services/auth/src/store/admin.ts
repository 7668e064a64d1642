// Queries of the admin API (services/auth/src/admin): suspensions, runtime settings, invite codes
// created or revoked by operators, and the counts of GetDomainStats.
import { type Database, getAdminSetting, putAdminSetting } from "@phoenix/runtime/db";
import { and, asc, count, eq, getTableColumns, gt, sql } from "drizzle-orm";
import type { ClientKey } from "../domain/ids.js";
import type { ClientRow } from "./clients.js";
import { clients, handles, inviteCodes, inviteCodeUses, userSuspensions, users } from "./schema.js";

/**
 * A client with its user's suspension, in the one read that authenticates every client request
 * (`findClient` plus an EXISTS on the suspensions).
 */
export async function findClientStanding(
  db: Database,
  key: ClientKey,
): Promise<(ClientRow & { suspended: boolean }) | undefined> {
  const rows = await db
    .select({
      ...getTableColumns(clients),
      suspended: sql<boolean>`EXISTS (SELECT 1 FROM "user_suspensions" s WHERE s."user_uuid" = "clients"."user_uuid")`,
    })
    .from(clients)
    .where(and(eq(clients.userUuid, key.userUuid), eq(clients.clientUuid, key.clientUuid)))
    .limit(1);
  return rows[0];
}

/** Suspends or lifts the suspension of an existing user (idempotent). */
export async function setSuspended(db: Database, userUuid: Uint8Array, suspended: boolean): Promise<void> {
  if (suspended) await db.insert(userSuspensions).values({ userUuid }).onConflictDoNothing();
  else await db.delete(userSuspensions).where(eq(userSuspensions.userUuid, userUuid));
}

/** A user with its client count and suspension, as the admin API lists it. */
export interface UserOverview {
  userUuid: Uint8Array;
  clientCount: number;
  suspended: boolean;
}

// Qualified by hand: inside `sql`, drizzle renders a column without its table, and the
// subqueries' `user_uuid` would name their own table's column.
const overviewColumns = {
  userUuid: users.userUuid,
  clientCount: sql<number>`(SELECT count(*)::int FROM "clients" c WHERE c."user_uuid" = "users"."user_uuid")`,
  suspended: sql<boolean>`EXISTS (SELECT 1 FROM "user_suspensions" s WHERE s."user_uuid" = "users"."user_uuid")`,
};

/** One user's overview, or undefined when unknown. */
export async function findUserOverview(
  db: Database,
  userUuid: Uint8Array,
): Promise<UserOverview | undefined> {
  const rows = await db.select(overviewColumns).from(users).where(eq(users.userUuid, userUuid)).limit(1);
  return rows[0];
}

/** Users ordered by uuid after `after` (exclusive), at most `limit`. */
export async function listUserOverviews(
  db: Database,
  after: Uint8Array | undefined,
  limit: number,
): Promise<UserOverview[]> {
  const query = db.select(overviewColumns).from(users);
  const filtered = after === undefined ? query : query.where(gt(users.userUuid, after));
  return filtered.orderBy(asc(users.userUuid)).limit(limit);
}

/** A runtime setting, or undefined when never set. */
export const getSetting = getAdminSetting;

/** Stores a runtime setting. */
export const putSetting = putAdminSetting;

export type InviteCodeRow = typeof inviteCodes.$inferSelect;

/** The stored invite code (or revocation of a configured one) with this hash. */
export async function findInviteCode(db: Database, codeHash: Uint8Array): Promise<InviteCodeRow | undefined> {
  const rows = await db.select().from(inviteCodes).where(eq(inviteCodes.codeHash, codeHash)).limit(1);
  return rows[0];
}

/** Stores a new invite code; false when its hash exists already. */
export async function insertInviteCode(db: Database, row: InviteCodeRow): Promise<boolean> {
  const rows = await db
    .insert(inviteCodes)
    .values(row)
    .onConflictDoNothing()
    .returning({ codeHash: inviteCodes.codeHash });
  return rows.length > 0;
}

/** Marks a stored code revoked, or records the revocation of a configured one. */
export async function revokeInviteCode(db: Database, row: InviteCodeRow): Promise<void> {
  await db
    .insert(inviteCodes)
    .values({ ...row, revoked: true })
    .onConflictDoUpdate({ target: inviteCodes.codeHash, set: { revoked: true } });
}

/** Every stored invite code row. */
export async function listInviteCodeRows(db: Database): Promise<InviteCodeRow[]> {
  return db.select().from(inviteCodes).orderBy(asc(inviteCodes.codeHash));
}

/** Uses counted so far, by code hash (hex). */
export async function inviteCodeUseCounts(db: Database): Promise<Map<string, number>> {
  const rows = await db.select().from(inviteCodeUses);
  return new Map(rows.map((row) => [Buffer.from(row.codeHash).toString("hex"), row.uses]));
}

/** The counts of GetDomainStats. */
export async function domainCounts(
  db: Database,
  now: Date,
): Promise<{ users: number; clients: number; handles: number; suspendedUsers: number }> {
  const one = async (query: Promise<{ n: number }[]>) => (await query)[0]?.n ?? 0;
  const [userCount, clientCount, handleCount, suspendedCount] = await Promise.all([
    one(db.select({ n: count() }).from(users)),
    one(db.select({ n: count() }).from(clients)),
    one(db.select({ n: count() }).from(handles).where(gt(handles.expiresAt, now))),
    one(db.select({ n: count() }).from(userSuspensions)),
  ]);
  return { users: userCount, clients: clientCount, handles: handleCount, suspendedUsers: suspendedCount };
}
