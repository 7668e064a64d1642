// Generates the migrations of the test fixture schema (src/db/test-fixture), used by this package's tests.
// Run from the repo root: npx drizzle-kit generate --config libs/runtime/migrations/test-fixture.drizzle.config.ts
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./libs/runtime/src/db/test-fixture/schema.ts",
  out: "./libs/runtime/src/db/test-fixture/migrations",
});
