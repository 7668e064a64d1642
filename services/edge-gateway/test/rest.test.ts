import * as grpc from "@grpc/grpc-js";
import { auth, common, googleRpc, queue, type RpcInfo, rpcCatalog } from "@phoenix/proto";
import { statusDetail } from "@phoenix/runtime/errors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientRpcs, type EdgeGateway, httpStatusOf, startEdgeGateway } from "../src/index.js";
import { type FakeUpstream, grpcError, startFakeUpstream } from "./support/fake-upstreams.js";

const GET_CREDENTIALS = "/phoenix.auth.v1.AuthService/GetAsCredentials";
const DEQUEUE = "/phoenix.queue.v1.QueueService/Dequeue";

// The contracts have no path variables yet; a second binding of GetAsCredentials with one
// exercises the generic template handling end to end.
function catalogWithPathVariable(): RpcInfo[] {
  return rpcCatalog().map((rpc) =>
    rpc.path === GET_CREDENTIALS && rpc.http
      ? {
          ...rpc,
          http: {
            ...rpc.http,
            additionalBindings: [
              {
                selector: "",
                pattern: { $case: "get", value: "/v1/as/domains/{domain}/credentials" },
                body: "",
                responseBody: "",
                additionalBindings: [],
              },
            ],
          },
        }
      : rpc,
  );
}

/** The fields the assertions read from gateway JSON bodies. */
interface Body {
  code: number;
  message: string;
  domain?: string;
  upstreams?: Record<string, string>;
  details: Partial<{ reason: string; "@type": string; limitExceeded: { limit: string } }>[];
}

function json(res: Response | undefined): Promise<Body> {
  if (!res) throw new Error("no response");
  return res.json() as Promise<Body>;
}

let upstream: FakeUpstream;
let gateway: EdgeGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = await startEdgeGateway({
    upstreams: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
    rpcs: catalogWithPathVariable(),
    limits: { maxBodyBytes: 4096, rateLimitPerSecond: 1000, rateLimitBurst: 1000 },
  });
  upstream.unary(GET_CREDENTIALS, async (request) => {
    const { domain } = request as auth.GetAsCredentialsRequest;
    return {
      domain: domain || "home.example",
      asCredentials: [new Uint8Array([1, 2, 3, 250])],
      asIntermediateCredentials: [],
      revokedFingerprints: [],
    } satisfies auth.GetAsCredentialsResponse;
  });
  upstream.unary(DEQUEUE, async (request) => {
    const { signed } = request as queue.DequeueRequest;
    return {
      messages: [
        { sequenceNumber: 18446744073709551615n, ciphertext: signed?.signature ?? new Uint8Array() },
      ],
      remaining: 7n,
    } satisfies queue.DequeueResponse;
  });
});

afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

async function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  return fetch(`${gateway.url}${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
}

describe("unary calls through REST", () => {
  it("GET with a path variable, answered in the proto3 JSON mapping", async () => {
    const res = await fetch(`${gateway.url}/v1/as/domains/beta.example/credentials`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await json(res)).toEqual({ domain: "beta.example", asCredentials: ["AQID+g=="] });
  });

  it("GET with a query parameter", async () => {
    const res = await fetch(`${gateway.url}/v1/as/credentials?domain=gamma.example`);
    expect(res.status).toBe(200);
    expect((await json(res)).domain).toBe("gamma.example");
  });

  it("binary protobuf request and response with a path variable", async () => {
    const res = await fetch(`${gateway.url}/v1/as/domains/delta.example/credentials`, {
      headers: { accept: "application/x-protobuf" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-protobuf");
    const decoded = auth.GetAsCredentialsResponse.decode(new Uint8Array(await res.arrayBuffer()));
    expect(decoded.domain).toBe("delta.example");
    expect(decoded.asCredentials).toEqual([new Uint8Array([1, 2, 3, 250])]);
  });

  it("POST body in JSON: bytes as base64, uint64 as strings", async () => {
    const signature = new Uint8Array([9, 8, 7]);
    const request = queue.DequeueRequest.toJSON({ signed: { tbs: new Uint8Array([1]), signature } });
    const res = await post("/v1/qs/queue/dequeue", JSON.stringify(request));
    expect(res.status).toBe(200);
    const payload = await json(res);
    expect(payload).toEqual({
      messages: [{ sequenceNumber: "18446744073709551615", ciphertext: "CQgH" }],
      remaining: "7",
    });
    // ts-proto's fromJSON reads the gateway's JSON back to the same values.
    const parsed = queue.DequeueResponse.fromJSON(payload);
    expect(parsed.messages[0]?.sequenceNumber).toBe(18446744073709551615n);
    expect(parsed.messages[0]?.ciphertext).toEqual(signature);
  });

  it("POST body in binary protobuf travels unchanged", async () => {
    const body = queue.DequeueRequest.encode({
      signed: { tbs: new Uint8Array([5, 5]), signature: new Uint8Array([4, 2]) },
    }).finish();
    const res = await post("/v1/qs/queue/dequeue", body, {
      "content-type": "application/x-protobuf",
      accept: "application/x-protobuf",
    });
    expect(res.status).toBe(200);
    const decoded = queue.DequeueResponse.decode(new Uint8Array(await res.arrayBuffer()));
    expect(decoded.messages[0]?.ciphertext).toEqual(new Uint8Array([4, 2]));
    const seen = upstream.calls.filter((c) => c.path === DEQUEUE).at(-1)?.request as queue.DequeueRequest;
    expect(Array.from(seen.signed?.tbs ?? [])).toEqual([5, 5]);
  });

  it("forwards the x-request-id and returns it", async () => {
    const res = await fetch(`${gateway.url}/v1/as/credentials`, {
      headers: { "x-request-id": "req-abc-123" },
    });
    expect(res.headers.get("x-request-id")).toBe("req-abc-123");
    const seen = upstream.calls.filter((c) => c.path === GET_CREDENTIALS).at(-1);
    expect(seen?.metadata.get("x-request-id")).toEqual(["req-abc-123"]);
  });
});

describe("routes", () => {
  it("every client-facing unary RPC has its REST route, every streaming one a WebSocket route", () => {
    const rest = new Set(gateway.restRoutes.map((r) => r.rpc.path));
    const streams = new Set(gateway.streamRoutes.map((r) => r.rpc.path));
    const rpcs = clientRpcs();
    expect(rpcs.length).toBeGreaterThan(40);
    for (const rpc of rpcs) {
      if (rpc.clientStreaming || rpc.serverStreaming) expect(streams.has(rpc.path), rpc.path).toBe(true);
      else expect(rest.has(rpc.path), rpc.path).toBe(true);
    }
    // Federation services are server-to-server: never routed.
    expect([...rest, ...streams].some((p) => p.includes("Federation"))).toBe(false);
  });

  it("every route answers (reaches its upstream method)", async () => {
    for (const route of gateway.restRoutes) {
      if (route.template.variables.length > 0) continue;
      const path = route.template.source;
      const res = route.httpMethod === "GET" ? await fetch(`${gateway.url}${path}`) : await post(path, "{}");
      // Unconfigured fake methods answer UNIMPLEMENTED (501): the call went to the right gRPC method.
      if (![GET_CREDENTIALS, DEQUEUE].includes(route.rpc.path)) {
        expect(res.status, route.label).toBe(501);
        const body = (await json(res)) as { message: string };
        expect(body.message).toContain(route.rpc.path);
      } else {
        await res.arrayBuffer();
      }
    }
  });

  it("unknown route: 404 with a google.rpc.Status body", async () => {
    const res = await fetch(`${gateway.url}/v1/nope`);
    expect(res.status).toBe(404);
    expect(await json(res)).toEqual({
      code: grpc.status.NOT_FOUND,
      message: "no route for GET /v1/nope",
      details: [],
    });
  });

  it("wrong method: 405 with Allow", async () => {
    const res = await fetch(`${gateway.url}/v1/qs/queue/dequeue`);
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect((await json(res)).code).toBe(grpc.status.UNIMPLEMENTED);
  });
});

describe("malformed requests", () => {
  it("invalid JSON: 400 naming the problem", async () => {
    const res = await post("/v1/qs/queue/dequeue", "{ not json");
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(body.message).toMatch(/not valid JSON/);
    expect(body.details[0]?.["@type"]).toBe("type.googleapis.com/phoenix.common.v1.ErrorDetail");
    expect(body.details[0]?.reason).toBe("ERROR_REASON_MALFORMED");
  });

  it("unknown field and wrong type: 400 naming the field", async () => {
    const unknown = await post("/v1/qs/queue/dequeue", JSON.stringify({ signd: {} }));
    expect(unknown.status).toBe(400);
    expect((await json(unknown)).message).toMatch(/signd/);
    const wrongType = await post("/v1/qs/queue/dequeue", JSON.stringify({ signed: { tbs: 12 } }));
    expect(wrongType.status).toBe(400);
    expect((await json(wrongType)).message).toMatch(/tbs/);
  });

  it("a JSON array instead of an object: 400", async () => {
    const res = await post("/v1/qs/queue/dequeue", "[]");
    expect(res.status).toBe(400);
  });

  it("binary protobuf that does not decode: 400", async () => {
    const res = await post("/v1/qs/queue/dequeue", new Uint8Array([0x0a, 0xff, 0xff]), {
      "content-type": "application/x-protobuf",
    });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toMatch(/not a valid binary phoenix.queue.v1.DequeueRequest/);
  });

  it("unsupported content type: 415", async () => {
    const res = await post("/v1/qs/queue/dequeue", "a=b", {
      "content-type": "application/x-www-form-urlencoded",
    });
    expect(res.status).toBe(415);
  });

  it("unknown query parameter: 400", async () => {
    const res = await fetch(`${gateway.url}/v1/as/credentials?domian=x`);
    expect(res.status).toBe(400);
    expect((await json(res)).message).toMatch(/domian/);
  });

  it("oversized body: 413 with the limit in the ErrorDetail", async () => {
    const res = await post("/v1/qs/queue/dequeue", JSON.stringify({ signed: { tbs: "A".repeat(8000) } }));
    expect(res.status).toBe(413);
    const body = await json(res);
    expect(body.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(body.details[0]?.reason).toBe("ERROR_REASON_SIZE_LIMIT");
    expect(body.details[0]?.limitExceeded?.limit).toBe("4096");
  });

  it("oversized body sent chunked (no Content-Length): 413", async () => {
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(1000)));
        controller.close();
      },
    });
    const res = await fetch(`${gateway.url}/v1/qs/queue/dequeue`, {
      method: "POST",
      body: chunks,
      headers: { "content-type": "application/json" },
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
  });
});

describe("refused large bodies", () => {
  // Bodies larger than the socket buffers: a gateway that answered 413 and closed while the client
  // was still sending left it with a broken pipe ("fetch failed", EPIPE) instead of the answer.
  it("every one of many concurrent oversized bodies gets its 413", async () => {
    const large = await startEdgeGateway({
      upstreams: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
      rpcs: catalogWithPathVariable(),
      limits: { maxBodyBytes: 1024 * 1024, rateLimitPerSecond: 1000, rateLimitBurst: 1000 },
    });
    try {
      // Eight clients, each sending ten bodies just over the limit one after the other.
      const statuses = (
        await Promise.all(
          Array.from({ length: 8 }, async (_, worker) => {
            const seen: number[] = [];
            for (let i = 0; i < 10; i++) {
              const res = await fetch(`${large.url}/v1/qs/queue/dequeue`, {
                method: "POST",
                headers: { "content-type": "application/x-protobuf" },
                body: new Uint8Array(1024 * 1024 + 1 + worker * 100 + i),
              });
              await res.arrayBuffer();
              seen.push(res.status);
            }
            return seen;
          }),
        )
      ).flat();
      expect(statuses).toEqual(statuses.map(() => 413));
    } finally {
      await large.close();
    }
  });
});

describe("upstream statuses", () => {
  const cases: [grpc.status, number][] = [
    [grpc.status.INVALID_ARGUMENT, 400],
    [grpc.status.UNAUTHENTICATED, 401],
    [grpc.status.PERMISSION_DENIED, 403],
    [grpc.status.NOT_FOUND, 404],
    [grpc.status.ALREADY_EXISTS, 409],
    [grpc.status.FAILED_PRECONDITION, 400],
    [grpc.status.RESOURCE_EXHAUSTED, 429],
    [grpc.status.UNAVAILABLE, 503],
    [grpc.status.INTERNAL, 500],
    [grpc.status.UNIMPLEMENTED, 501],
    [grpc.status.ABORTED, 409],
    [grpc.status.DEADLINE_EXCEEDED, 504],
  ];
  const path = "/phoenix.delivery.v1.DeliveryService/SendMessage";

  it.each(cases)("gRPC code %i becomes HTTP %i with a google.rpc.Status body", async (code, http) => {
    expect(httpStatusOf(code)).toBe(http);
    upstream.unary(path, async () => {
      throw grpcError(code, `refused with ${code}`);
    });
    const res = await post("/v1/ds/groups/messages", "{}");
    expect(res.status).toBe(http);
    expect(await json(res)).toEqual({ code, message: `refused with ${code}`, details: [] });
  });

  it("passes the Phoenix ErrorDetail through (JSON and binary)", async () => {
    const detail: common.ErrorDetail = {
      reason: common.ErrorReason.ERROR_REASON_WRONG_EPOCH,
      detail: { $case: "wrongEpoch", value: { currentEpoch: 12n, requestEpoch: 9n } },
    };
    upstream.unary(path, async () => {
      throw grpcError(grpc.status.FAILED_PRECONDITION, "wrong epoch", [
        statusDetail("phoenix.common.v1.ErrorDetail", common.ErrorDetail.encode(detail).finish()),
      ]);
    });
    const res = await post("/v1/ds/groups/messages", "{}");
    expect(res.status).toBe(400);
    expect(await json(res)).toEqual({
      code: grpc.status.FAILED_PRECONDITION,
      message: "wrong epoch",
      details: [
        {
          "@type": "type.googleapis.com/phoenix.common.v1.ErrorDetail",
          reason: "ERROR_REASON_WRONG_EPOCH",
          wrongEpoch: { currentEpoch: "12", requestEpoch: "9" },
        },
      ],
    });
    const binary = await post("/v1/ds/groups/messages", "{}", { accept: "application/x-protobuf" });
    expect(binary.status).toBe(400);
    const status = googleRpc.Status.decode(new Uint8Array(await binary.arrayBuffer()));
    expect(status.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(common.ErrorDetail.decode(status.details[0]?.value ?? new Uint8Array())).toEqual(detail);
  });
});

describe("deadlines", () => {
  const path = "/phoenix.auth.v1.AuthService/ListClients";

  it("the client's grpc-timeout becomes the upstream deadline", async () => {
    upstream.unary(path, async () => ({ clients: [] }));
    const before = Date.now();
    const res = await post("/v1/as/clients/list", "{}", { "grpc-timeout": "7S" });
    expect(res.status).toBe(200);
    const deadline = upstream.calls.filter((c) => c.path === path).at(-1)?.deadline;
    const ms = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    expect(ms).toBeGreaterThan(before + 5000);
    expect(ms).toBeLessThanOrEqual(Date.now() + 7000);
  });

  it("without a header the gateway's default deadline applies", async () => {
    const before = Date.now();
    await (await post("/v1/as/clients/list", "{}")).arrayBuffer();
    const deadline = upstream.calls.filter((c) => c.path === path).at(-1)?.deadline;
    const ms = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    expect(ms).toBeGreaterThan(before + 8000);
    expect(ms).toBeLessThanOrEqual(Date.now() + 10_000);
  });

  it("an upstream slower than the deadline: 504 DEADLINE_EXCEEDED", async () => {
    let release = () => {};
    upstream.unary(path, () => new Promise((resolve) => (release = () => resolve({ clients: [] }))));
    const res = await post("/v1/as/clients/list", "{}", { "grpc-timeout": "200m" });
    release();
    expect(res.status).toBe(504);
    expect((await json(res)).code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it("a malformed grpc-timeout: 400", async () => {
    const res = await post("/v1/as/clients/list", "{}", { "grpc-timeout": "soon" });
    expect(res.status).toBe(400);
  });
});

describe("health, readiness and metrics", () => {
  it("/healthz is 200", async () => {
    const res = await fetch(`${gateway.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ status: "ok" });
  });

  it("/readyz flips to 503 when an upstream goes NOT_SERVING and back", async () => {
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    upstream.health.setStatus("phoenix.queue.v1.QueueService", "NOT_SERVING");
    try {
      const notReady = await fetch(`${gateway.url}/readyz`);
      expect(notReady.status).toBe(503);
      const body = await json(notReady);
      expect(body.upstreams).toEqual({ auth: "SERVING", delivery: "SERVING", queue: "NOT_SERVING" });
    } finally {
      upstream.health.setStatus("phoenix.queue.v1.QueueService", "SERVING");
    }
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
  });

  it("counts requests per route", async () => {
    await (await fetch(`${gateway.url}/v1/as/credentials`)).arrayBuffer();
    const text = await gateway.metrics.registry.metrics();
    expect(text).toMatch(
      /edge_http_requests_total\{route="GET \/v1\/as\/credentials",method="GET",code="200"/,
    );
    expect(text).toMatch(/edge_http_requests_total\{route="unmatched",method="GET",code="404"/);
  });
});

describe("readiness with an unreachable upstream", () => {
  it("is 503 and names the unreachable service", async () => {
    const other = await startEdgeGateway({
      upstreams: { auth: upstream.address, delivery: upstream.address, queue: "127.0.0.1:1" },
      limits: { readinessTimeoutMs: 500 },
    });
    try {
      const res = await fetch(`${other.url}/readyz`);
      expect(res.status).toBe(503);
      expect((await json(res)).upstreams?.queue).toBe("UNAVAILABLE");
    } finally {
      await other.close();
    }
  });
});

describe("rate limit", () => {
  it("refuses a burst beyond the bucket with 429 and Retry-After", async () => {
    const limited = await startEdgeGateway({
      upstreams: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
      limits: { rateLimitPerSecond: 1, rateLimitBurst: 3 },
    });
    try {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 5; i++) {
        last = await fetch(`${limited.url}/v1/as/credentials`);
        statuses.push(last.status);
        if (last.status !== 429) await last.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(Number(last?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const body = await json(last);
      expect(body.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(body.details[0]?.reason).toBe("ERROR_REASON_RATE_LIMIT");
      // Health endpoints are not rate limited.
      expect((await fetch(`${limited.url}/healthz`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
