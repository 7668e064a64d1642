import { fileURLToPath } from "node:url";

/** The gateway's drizzle-kit migrations folder (applied by openDatabase at start). */
export const GATEWAY_MIGRATIONS: string = fileURLToPath(new URL("../../migrations", import.meta.url));
