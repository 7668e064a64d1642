import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientRpcs, type EdgeGateway, startEdgeGateway } from "../src/index.js";
import { COMMITTED_OPENAPI_PATH, gatewayOpenApi, staleOpenApiPaths } from "../src/openapi/committed.js";
import { type FakeUpstream, startFakeUpstream } from "./support/fake-upstreams.js";

interface Operation {
  operationId: string;
  summary?: string;
  description?: string;
  "x-grpc-method"?: string;
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, unknown>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { properties?: Record<string, Record<string, unknown>>; description?: string }>;
  };
}

let upstream: FakeUpstream;
let gateway: EdgeGateway;
let doc: Document;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = await startEdgeGateway({
    upstreams: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
  });
  const res = await fetch(`${gateway.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Document;
});

afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document (schema check)", async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe("3.1.0");
  });

  it("documents every route with the RPC's comment", () => {
    const operations = Object.values(doc.paths).flatMap((methods) => Object.values(methods));
    const byRpc = new Map(operations.map((op) => [op["x-grpc-method"], op]));
    for (const rpc of clientRpcs()) {
      expect(byRpc.get(rpc.path)?.description, rpc.path).toContain(rpc.comment.split("\n")[0]);
    }
    for (const route of gateway.restRoutes) {
      expect(
        doc.paths[route.template.openApiPath]?.[route.httpMethod.toLowerCase()]?.["x-grpc-method"],
        route.label,
      ).toBe(route.rpc.path);
    }
    for (const stream of gateway.streamRoutes) {
      expect(doc.paths[stream.path]?.get?.["x-grpc-method"], stream.path).toBe(stream.rpc.path);
    }
    expect(doc.paths["/healthz"]?.get?.summary).toBe("Liveness");
    expect(doc.paths["/readyz"]?.get?.summary).toBe("Readiness");
  });

  it("request bodies reference message schemas in the proto3 JSON mapping, with field docs", () => {
    const register = doc.paths["/v1/qs/queue/dequeue"]?.post;
    expect(register?.requestBody?.content["application/json"]?.schema.$ref).toBe(
      "#/components/schemas/phoenix.queue.v1.DequeueRequest",
    );
    expect(register?.requestBody?.content["application/x-protobuf"]?.schema).toMatchObject({
      type: "string",
      format: "binary",
    });
    const signed = doc.components.schemas["phoenix.common.v1.Signed"];
    expect(signed?.properties?.tbs).toMatchObject({ type: "string", format: "byte" });
    expect(String(signed?.properties?.tbs?.description)).toMatch(/Tbs/);
    const message = doc.components.schemas["phoenix.common.v1.QueueMessage"];
    expect(message?.properties?.sequenceNumber).toMatchObject({ type: "string", format: "uint64" });
    const detail = doc.components.schemas["phoenix.common.v1.ErrorDetail"];
    expect(detail?.properties?.reason).toEqual(
      expect.objectContaining({ $ref: "#/components/schemas/phoenix.common.v1.ErrorReason" }),
    );
    const reason = doc.components.schemas["phoenix.common.v1.ErrorReason"] as { enum?: string[] };
    expect(reason.enum).toContain("ERROR_REASON_WRONG_EPOCH");
  });

  it("every $ref resolves", () => {
    const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(50);
    for (const ref of refs) {
      const name = ref.slice('"#/components/schemas/'.length, -1);
      expect(doc.components.schemas, name).toHaveProperty([name]);
    }
  });

  it("is the committed services/edge-gateway/openapi.json (npm run openapi:generate refreshes it)", async () => {
    const file = new URL(`../../../${COMMITTED_OPENAPI_PATH}`, import.meta.url);
    const committed = JSON.parse(await readFile(file, "utf8")) as Document;
    // The served document and the generator's are one; the committed file must be that one.
    expect(gatewayOpenApi()).toEqual(doc);
    expect(await staleOpenApiPaths(fileURLToPath(file), gatewayOpenApi())).toEqual([]);
    expect(committed).toEqual(doc);
  });

  it("names where a stale committed document differs", async () => {
    const changed = structuredClone(doc) as unknown as Record<string, unknown> & Document;
    const operation = changed.paths["/v1/qs/queue/dequeue"]?.post;
    if (operation) operation.summary = "changed";
    const file = fileURLToPath(new URL(`../../../${COMMITTED_OPENAPI_PATH}`, import.meta.url));
    expect(await staleOpenApiPaths(file, changed)).toEqual(["paths./v1/qs/queue/dequeue.post.summary"]);
  });
});
