import { fileURLToPath } from "node:url";

/** The DS's drizzle-kit migrations folder (applied by openDatabase at start). */
export const DELIVERY_MIGRATIONS: string = fileURLToPath(new URL("../../migrations", import.meta.url));
