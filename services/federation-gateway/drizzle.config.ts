// Generates the gateway's migrations from src/store/schema.ts.
// Run from the repo root: npx drizzle-kit generate --config services/federation-gateway/drizzle.config.ts
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./services/federation-gateway/src/store/schema.ts",
  out: "./services/federation-gateway/migrations",
});
