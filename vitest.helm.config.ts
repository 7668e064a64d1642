import { defineConfig } from "vitest/config";

// `npm run test:helm`: the helm-based multi-domain federation test (k8s/test), kept out of
// `npm test` because it needs root, podman and the images deploy/image/build.sh makes.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["k8s/test/**/*.test.ts"],
    reporters: ["default", "./scripts/summary-reporter.ts"],
    testTimeout: 900_000,
    hookTimeout: 600_000,
    pool: "forks",
    // One file, its steps in order: install → helm test → users → upgrade → uninstall.
    sequence: { concurrent: false },
  },
});
