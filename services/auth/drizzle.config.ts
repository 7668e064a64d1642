// Generates the AS migrations from src/store/schema.ts.
// Run from the repo root: npx drizzle-kit generate --config services/auth/drizzle.config.ts
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./services/auth/src/store/schema.ts",
  out: "./services/auth/migrations",
});
