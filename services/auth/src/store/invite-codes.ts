import type { Database } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import { inviteCodeUses } from "./schema.js";

/**
 * Counts one use of an invite code, inside the registration's transaction: false (nothing
 * changed) when it has already admitted `maxUses` registrations. The upsert locks the code's row,
 * so concurrent registrations with one code never admit more than `maxUses` between them, and a
 * registration that fails later rolls its use back.
 */
export async function consumeInviteCode(
  db: Database,
  codeHash: Uint8Array,
  maxUses: number,
): Promise<boolean> {
  const rows = await db
    .insert(inviteCodeUses)
    .values({ codeHash, uses: 1 })
    .onConflictDoUpdate({
      target: inviteCodeUses.codeHash,
      set: { uses: sql`${inviteCodeUses.uses} + 1` },
      where: sql`${inviteCodeUses.uses} < ${maxUses}`,
    })
    .returning({ uses: inviteCodeUses.uses });
  return rows.length > 0;
}
