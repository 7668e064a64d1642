// Generates the QS migrations from src/store/schema.ts.
// Run from the repo root: npx drizzle-kit generate --config services/queue/drizzle.config.ts
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./services/queue/src/store/schema.ts",
  out: "./services/queue/migrations",
});
