import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Workspace packages resolve to their TypeScript sources, so tests never need a prior build.
    conditions: ["source"],
  },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: [
      "libs/*/src/**/*.test.ts",
      "services/*/src/**/*.test.ts",
      "libs/*/test/**/*.test.ts",
      "services/*/test/**/*.test.ts",
      "examples/test/**/*.test.ts",
    ],
    globalSetup: ["./scripts/test-infra.ts"],
    reporters: ["default", "./scripts/summary-reporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
