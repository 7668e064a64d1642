// Generates the runtime-owned migrations (outbox, seen requests) from src/*/schema.ts.
// Run from the repo root: npx drizzle-kit generate --config libs/runtime/migrations/drizzle.config.ts
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: ["./libs/runtime/src/outbox/schema.ts", "./libs/runtime/src/replay/schema.ts"],
  out: "./libs/runtime/migrations/runtime",
  schemaFilter: ["phoenix_runtime"],
});
