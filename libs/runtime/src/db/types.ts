import type { ExtractTablesWithRelations } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";

/**
 * A drizzle database handle that works the same on node-postgres (deployments) and on PGlite
 * (the embedded homeserver). Code written against this type runs on both. `TSchema` is the
 * service's drizzle schema when it uses the relational query API; plain query builders need none.
 */
export type Database<TSchema extends Record<string, unknown> = Record<string, never>> = PgDatabase<
  PgQueryResultHKT,
  TSchema
>;

/** The handle inside `db.transaction(...)` / `transaction(db, ...)`; it is also a `Database`. */
export type Transaction<TSchema extends Record<string, unknown> = Record<string, never>> = PgTransaction<
  PgQueryResultHKT,
  TSchema,
  ExtractTablesWithRelations<TSchema>
>;
