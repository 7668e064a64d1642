import type { Database } from "@phoenix/runtime/db";
import { eq } from "drizzle-orm";
import { remoteAsCredentials } from "./schema.js";

export type RemoteAsCredentialsRow = typeof remoteAsCredentials.$inferSelect;

/** The cached credentials of `domain`, if any. */
export async function findRemoteAsCredentials(
  db: Database,
  domain: string,
): Promise<RemoteAsCredentialsRow | undefined> {
  const rows = await db
    .select()
    .from(remoteAsCredentials)
    .where(eq(remoteAsCredentials.domain, domain))
    .limit(1);
  return rows[0];
}

/** Stores (or replaces) the credentials of a domain. */
export async function storeRemoteAsCredentials(db: Database, row: RemoteAsCredentialsRow): Promise<void> {
  await db
    .insert(remoteAsCredentials)
    .values(row)
    .onConflictDoUpdate({
      target: remoteAsCredentials.domain,
      set: { response: row.response, fetchedAt: row.fetchedAt },
    });
}
