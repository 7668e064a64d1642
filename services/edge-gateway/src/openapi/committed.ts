import { readFile, writeFile } from "node:fs/promises";
import { isDeepStrictEqual } from "node:util";
import type { RpcInfo } from "@phoenix/proto";
import { clientRpcs } from "../contracts.js";
import { buildRestRoutes } from "../http/routes.js";
import { buildStreamRoutes } from "../ws/stream-bridge.js";
import { buildOpenApi, type JsonSchema } from "./openapi.js";

/**
 * Where the generated OpenAPI document is committed (relative to the repository root), for
 * client generators that should not need a running server. `npm run openapi:generate` writes it,
 * `npm run openapi:check` (and test/openapi.test.ts) fail when it is stale.
 */
export const COMMITTED_OPENAPI_PATH = "services/edge-gateway/openapi.json";

/** The document the gateway serves at `/openapi.json` for the given RPCs (default: all client RPCs). */
export function gatewayOpenApi(rpcs: readonly RpcInfo[] = clientRpcs()): JsonSchema {
  return buildOpenApi({ restRoutes: buildRestRoutes(rpcs), streamRoutes: buildStreamRoutes(rpcs) });
}

/** Writes `doc` to `file` as JSON (indented; run the formatter over it for the committed layout). */
export async function writeOpenApi(file: string, doc: JsonSchema): Promise<void> {
  await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`);
}

/**
 * The JSON paths (`paths./v1/as/users.post`) where the committed document differs from `expected`,
 * at most `limit` of them; empty when they are equal as JSON values (key order and layout aside).
 */
export async function staleOpenApiPaths(file: string, expected: JsonSchema, limit = 20): Promise<string[]> {
  let committed: unknown;
  try {
    committed = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    return [`(the file: ${(error as Error).message})`];
  }
  const differences: string[] = [];
  diff(committed, expected, "", differences, limit);
  return differences;
}

function diff(actual: unknown, expected: unknown, at: string, out: string[], limit: number): void {
  if (out.length >= limit || isDeepStrictEqual(actual, expected)) return;
  if (isObject(actual) && isObject(expected)) {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    for (const key of keys) diff(actual[key], expected[key], at ? `${at}.${key}` : key, out, limit);
    return;
  }
  out.push(at || "(root)");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
