// Queries of account passwords (OPAQUE): the server setup, the users' registration records, the
// logins in progress and the add-client grants they yield.
import type { Database } from "@phoenix/runtime/db";
import { and, eq, gt, lt } from "drizzle-orm";
import { addClientGrants, opaqueServerSetup, passwordLogins, passwordRecords } from "./schema.js";

/** The sealed server setup and the id of the key it is sealed under. */
export interface StoredSetup {
  setup: Uint8Array;
  setupKekId: Uint8Array;
}

/** The stored server setup, if one was made. */
export async function findServerSetup(db: Database): Promise<StoredSetup | undefined> {
  const rows = await db
    .select({ setup: opaqueServerSetup.setup, setupKekId: opaqueServerSetup.setupKekId })
    .from(opaqueServerSetup)
    .where(eq(opaqueServerSetup.id, 1));
  return rows[0];
}

/** Stores the server setup, replacing the row (first start, or a reseal under a new key). */
export async function putServerSetup(db: Database, stored: StoredSetup): Promise<void> {
  await db
    .insert(opaqueServerSetup)
    .values({ id: 1, ...stored })
    .onConflictDoUpdate({ target: opaqueServerSetup.id, set: stored });
}

/**
 * The user's registration record, if the user has a password. `lock`: hold a share lock on it
 * until the transaction ends, so the password cannot be replaced (nor the user deleted) meanwhile.
 */
export async function findPasswordRecord(
  db: Database,
  userUuid: Uint8Array,
  lock = false,
): Promise<Uint8Array | undefined> {
  const query = db
    .select({ record: passwordRecords.record })
    .from(passwordRecords)
    .where(eq(passwordRecords.userUuid, userUuid));
  const rows = lock ? await query.for("share") : await query;
  return rows[0]?.record;
}

/** Sets or replaces the user's registration record. */
export async function putPasswordRecord(
  db: Database,
  userUuid: Uint8Array,
  record: Uint8Array,
): Promise<void> {
  await db
    .insert(passwordRecords)
    .values({ userUuid, record })
    .onConflictDoUpdate({ target: passwordRecords.userUuid, set: { record } });
}

/** Deletes the user's registration record; false when there was none. */
export async function deletePasswordRecord(db: Database, userUuid: Uint8Array): Promise<boolean> {
  const rows = await db
    .delete(passwordRecords)
    .where(eq(passwordRecords.userUuid, userUuid))
    .returning({ userUuid: passwordRecords.userUuid });
  return rows.length > 0;
}

/** A login in progress: its sealed state. */
export interface StoredLogin {
  state: Uint8Array;
  stateKekId: Uint8Array;
}

/** Records a started login until `expiresAt`. */
export async function insertLogin(
  db: Database,
  loginId: Uint8Array,
  stored: StoredLogin,
  expiresAt: Date,
): Promise<void> {
  await db.insert(passwordLogins).values({ loginId, ...stored, expiresAt });
}

/**
 * Takes a login out of the table (whatever comes of the attempt: one finish per start) and
 * returns it unless it had expired at `now`.
 */
export async function takeLogin(
  db: Database,
  loginId: Uint8Array,
  now: Date,
): Promise<StoredLogin | undefined> {
  const rows = await db.delete(passwordLogins).where(eq(passwordLogins.loginId, loginId)).returning({
    state: passwordLogins.state,
    stateKekId: passwordLogins.stateKekId,
    expiresAt: passwordLogins.expiresAt,
  });
  const row = rows[0];
  if (!row || row.expiresAt.getTime() <= now.getTime()) return undefined;
  return { state: row.state, stateKekId: row.stateKekId };
}

/** Deletes logins that expired before `now` (never finished: a wrong password or abandoned); returns how many. */
export async function deleteExpiredLogins(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(passwordLogins)
    .where(lt(passwordLogins.expiresAt, now))
    .returning({ loginId: passwordLogins.loginId });
  return rows.length;
}

/** Stores an add-client grant (by the hash of its token) for `userUuid`. */
export async function insertGrant(
  db: Database,
  grant: { grantHash: Uint8Array; userUuid: Uint8Array; expiresAt: Date; sealedExpiry: Uint8Array },
): Promise<void> {
  await db.insert(addClientGrants).values(grant);
}

/**
 * Deletes the grant with this hash unless its hour has passed at `now` (one statement, so two
 * concurrent uses cannot both have it) and returns its user and sealed exact expiry; undefined
 * when unknown or used. The caller checks the exact expiry and rolls back if it passed.
 */
export async function consumeGrant(
  db: Database,
  grantHash: Uint8Array,
  now: Date,
): Promise<{ userUuid: Uint8Array; sealedExpiry: Uint8Array } | undefined> {
  const rows = await db
    .delete(addClientGrants)
    .where(and(eq(addClientGrants.grantHash, grantHash), gt(addClientGrants.expiresAt, now)))
    .returning({ userUuid: addClientGrants.userUuid, sealedExpiry: addClientGrants.sealedExpiry });
  return rows[0];
}

/** Withdraws every unused grant of the user (its password changed or was removed). */
export async function deleteGrantsOf(db: Database, userUuid: Uint8Array): Promise<void> {
  await db.delete(addClientGrants).where(eq(addClientGrants.userUuid, userUuid));
}

/** Deletes grants that expired before `now`; returns how many. */
export async function deleteExpiredGrants(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(addClientGrants)
    .where(lt(addClientGrants.expiresAt, now))
    .returning({ grantHash: addClientGrants.grantHash });
  return rows.length;
}
