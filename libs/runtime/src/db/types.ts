import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";

/**
 * A drizzle database handle that works the same on node-postgres (deployments) and on PGlite
 * (the embedded homeserver). Code written against this type runs on both.
 */
export type Database = PgDatabase<PgQueryResultHKT>;
