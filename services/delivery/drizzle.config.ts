// Generates the DS migrations from src/store/schema.ts.
// Run from the repo root: npx drizzle-kit generate --config services/delivery/drizzle.config.ts
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./services/delivery/src/store/schema.ts",
  out: "./services/delivery/migrations",
});
