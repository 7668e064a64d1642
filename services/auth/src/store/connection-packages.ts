import type { Database } from "@phoenix/runtime/db";
import { and, asc, eq, gt, lte } from "drizzle-orm";
import type { ClientKey } from "../domain/ids.js";
import { connectionPackages } from "./schema.js";

/** Whose packages: a client's or a handle's. */
export type PackageOwner = { client: ClientKey } | { handleHash: Uint8Array };

function ownedBy(owner: PackageOwner) {
  return "handleHash" in owner
    ? eq(connectionPackages.handleHash, owner.handleHash)
    : and(
        eq(connectionPackages.userUuid, owner.client.userUuid),
        eq(connectionPackages.clientUuid, owner.client.clientUuid),
      );
}

function ownerColumns(owner: PackageOwner) {
  return "handleHash" in owner
    ? { handleHash: owner.handleHash, userUuid: null, clientUuid: null }
    : { handleHash: null, userUuid: owner.client.userUuid, clientUuid: owner.client.clientUuid };
}

/** Replaces all packages of `owner`. */
export async function replacePackages(
  db: Database,
  owner: PackageOwner,
  packages: { package: Uint8Array; lastResort: boolean; expiresAt: Date }[],
): Promise<void> {
  await db.delete(connectionPackages).where(ownedBy(owner));
  if (packages.length === 0) return;
  await db.insert(connectionPackages).values(packages.map((p) => ({ ...ownerColumns(owner), ...p })));
}

/**
 * Hands out one package of `owner`: an ordinary one if any is left (deleted, i.e. consumed, under
 * a row lock that concurrent takers skip), else the last-resort one, which stays.
 */
export async function takePackage(
  db: Database,
  owner: PackageOwner,
  now: number,
): Promise<Uint8Array | undefined> {
  const at = new Date(now);
  const ordinary = await db
    .select({ id: connectionPackages.id, package: connectionPackages.package })
    .from(connectionPackages)
    .where(
      and(ownedBy(owner), eq(connectionPackages.lastResort, false), gt(connectionPackages.expiresAt, at)),
    )
    .orderBy(asc(connectionPackages.id))
    .limit(1)
    .for("update", { skipLocked: true });
  const first = ordinary[0];
  if (first) {
    await db.delete(connectionPackages).where(eq(connectionPackages.id, first.id));
    return first.package;
  }
  const lastResort = await db
    .select({ package: connectionPackages.package })
    .from(connectionPackages)
    .where(and(ownedBy(owner), eq(connectionPackages.lastResort, true), gt(connectionPackages.expiresAt, at)))
    .orderBy(asc(connectionPackages.id))
    .limit(1);
  return lastResort[0]?.package;
}

/** Deletes every package expired at `now` (ms); returns how many. */
export async function deleteExpiredPackages(db: Database, now: number): Promise<number> {
  const rows = await db
    .delete(connectionPackages)
    .where(lte(connectionPackages.expiresAt, new Date(now)))
    .returning({ id: connectionPackages.id });
  return rows.length;
}
