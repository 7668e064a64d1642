// `npm run openapi:generate` writes the committed OpenAPI document (services/edge-gateway/openapi.json)
// from the contracts, formatted by biome; `npm run openapi:check` exits 1 when it is stale.
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { COMMITTED_OPENAPI_PATH, gatewayOpenApi, staleOpenApiPaths, writeOpenApi } from "./committed.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const file = join(root, COMMITTED_OPENAPI_PATH);
const args = process.argv.slice(2);

if (args.length > 1 || (args.length === 1 && args[0] !== "--check")) {
  console.error("usage: openapi-cli [--check]");
  process.exitCode = 2;
} else if (args[0] === "--check") {
  const stale = await staleOpenApiPaths(file, gatewayOpenApi());
  if (stale.length > 0) {
    console.error(`${COMMITTED_OPENAPI_PATH} is stale (run npm run openapi:generate); differs at:`);
    for (const path of stale) console.error(`  ${path}`);
    process.exitCode = 1;
  } else {
    console.log(`${COMMITTED_OPENAPI_PATH} is up to date`);
  }
} else {
  await writeOpenApi(file, gatewayOpenApi());
  // The committed layout is biome's, so `biome ci .` stays clean.
  execFileSync(join(root, "node_modules/.bin/biome"), ["format", "--write", file], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 60_000,
  });
  console.log(`wrote ${COMMITTED_OPENAPI_PATH}`);
}
