import { request } from "node:http";
import { ConfigError, loadConfig } from "@phoenix/runtime/config";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type EdgeGateway, edgeGatewayConfig, edgeGatewayOptions, startEdgeGateway } from "../src/index.js";
import { type FakeUpstream, startFakeUpstream } from "./support/fake-upstreams.js";

const APP = "https://app.example";
const EVIL = "https://evil.example";
const LISTEN = "/v1/qs/ws/listen";

let upstream: FakeUpstream;
/** CORS off (the default), an allow list, and `*`. */
let off: EdgeGateway;
let listed: EdgeGateway;
let anyOrigin: EdgeGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const upstreams = { auth: upstream.address, delivery: upstream.address, queue: upstream.address };
  off = await startEdgeGateway({ upstreams });
  listed = await startEdgeGateway({ upstreams, corsAllowedOrigins: [APP, "http://localhost:5173"] });
  anyOrigin = await startEdgeGateway({ upstreams, corsAllowedOrigins: ["*"] });
});

afterAll(async () => {
  await Promise.all([off?.close(), listed?.close(), anyOrigin?.close()]);
  await upstream?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

function send(
  gateway: EdgeGateway,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${gateway.url}${path}`, { method, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function preflight(gateway: EdgeGateway, origin: string, path = "/v1/qs/queue/dequeue"): Promise<Answer> {
  return send(gateway, "OPTIONS", path, {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type, x-request-id",
  });
}

function corsHeaders(answer: Answer): string[] {
  return Object.keys(answer.headers).filter((name) => name.startsWith("access-control-"));
}

/** The status the upgrade got: 101 when the socket opened, else the HTTP status of the refusal. */
function upgrade(gateway: EdgeGateway, origin: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gateway.url.replace("http", "ws")}${LISTEN}`, {
      ...(origin ? { origin } : {}),
      handshakeTimeout: 10_000,
    });
    ws.once("upgrade", (res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once("error", (error) => reject(error));
  });
}

describe("CORS, allowed origins configured", () => {
  it("answers a preflight from an allowed origin with the methods, headers and max-age", async () => {
    const answer = await preflight(listed, APP);
    expect(answer.status).toBe(204);
    expect(answer.headers["access-control-allow-origin"]).toBe(APP);
    const methods = String(answer.headers["access-control-allow-methods"]).split(", ");
    expect(methods).toEqual(expect.arrayContaining(["GET", "POST"]));
    const allowed = String(answer.headers["access-control-allow-headers"]).split(", ");
    expect(allowed).toEqual(
      expect.arrayContaining(["content-type", "authorization", "x-request-id", "grpc-timeout", "accept"]),
    );
    expect(answer.headers["access-control-max-age"]).toBe("600");
    expect(String(answer.headers.vary)).toContain("Origin");
    expect(answer.headers["access-control-allow-credentials"]).toBeUndefined();
  });

  it("gives the actual request from an allowed origin the origin and the exposed headers, errors too", async () => {
    const ok = await send(listed, "GET", "/healthz", { origin: "http://localhost:5173" });
    expect(ok.status).toBe(200);
    expect(ok.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
    expect(String(ok.headers["access-control-expose-headers"]).split(", ")).toContain("x-request-id");
    expect(String(ok.headers.vary)).toContain("Origin");
    const missing = await send(listed, "GET", "/v1/nothing-here", { origin: APP });
    expect(missing.status).toBe(404);
    expect(missing.headers["access-control-allow-origin"]).toBe(APP);
  });

  it("gives a disallowed origin no CORS header, on the preflight and on the actual request", async () => {
    const refused = await preflight(listed, EVIL);
    expect(corsHeaders(refused)).toEqual([]);
    expect(refused.status).not.toBe(204);
    const actual = await send(listed, "GET", "/healthz", { origin: EVIL });
    expect(actual.status).toBe(200);
    expect(corsHeaders(actual)).toEqual([]);
    // The answer varies by Origin even when it carries no CORS header (shared caches).
    expect(String(actual.headers.vary)).toContain("Origin");
    // An origin differing only in scheme or port is another origin.
    expect(corsHeaders(await preflight(listed, "http://app.example"))).toEqual([]);
    expect(corsHeaders(await preflight(listed, "http://localhost:5174"))).toEqual([]);
  });

  it("lets an allowed origin and native clients open a WebSocket, refuses other pages with 403", async () => {
    expect(await upgrade(listed, APP)).toBe(101);
    expect(await upgrade(listed, undefined)).toBe(101);
    expect(await upgrade(listed, EVIL)).toBe(403);
  });
});

describe("CORS, `*`", () => {
  it("allows any origin with a literal * (no credentials)", async () => {
    const answer = await preflight(anyOrigin, EVIL);
    expect(answer.status).toBe(204);
    expect(answer.headers["access-control-allow-origin"]).toBe("*");
    const actual = await send(anyOrigin, "GET", "/healthz", { origin: "null" });
    expect(actual.headers["access-control-allow-origin"]).toBe("*");
    expect(await upgrade(anyOrigin, EVIL)).toBe(101);
  });
});

describe("CORS off (default)", () => {
  it("sends no CORS header at all: the preflight is an ordinary OPTIONS request", async () => {
    const answer = await preflight(off, APP);
    expect(corsHeaders(answer)).toEqual([]);
    expect(answer.status).toBe(405);
    const actual = await send(off, "GET", "/healthz", { origin: APP });
    expect(corsHeaders(actual)).toEqual([]);
    expect(actual.headers.vary).toBeUndefined();
  });

  it("lets only the gateway's own origin and native clients open a WebSocket", async () => {
    expect(await upgrade(off, undefined)).toBe(101);
    expect(await upgrade(off, off.url)).toBe(101);
    expect(await upgrade(off, APP)).toBe(403);
  });
});

describe("EDGE_CORS_ALLOWED_ORIGINS", () => {
  const required = {
    AUTH_SERVICE_ADDRESS: "127.0.0.1:1",
    DELIVERY_SERVICE_ADDRESS: "127.0.0.1:2",
    QUEUE_SERVICE_ADDRESS: "127.0.0.1:3",
  };
  const load = (value: string | undefined) =>
    loadConfig(edgeGatewayConfig, { ...required, EDGE_CORS_ALLOWED_ORIGINS: value });

  it("is off by default and normalizes origins as browsers send them", () => {
    expect(load(undefined).EDGE_CORS_ALLOWED_ORIGINS).toEqual([]);
    expect(load("").EDGE_CORS_ALLOWED_ORIGINS).toEqual([]);
    const config = load(
      "https://App.Example/, http://localhost:5173, https://b.example:443, capacitor://localhost",
    );
    expect(config.EDGE_CORS_ALLOWED_ORIGINS).toEqual([
      APP,
      "http://localhost:5173",
      "https://b.example",
      "capacitor://localhost",
    ]);
    expect(edgeGatewayOptions(config).corsAllowedOrigins).toEqual(config.EDGE_CORS_ALLOWED_ORIGINS);
    expect(load(" * ").EDGE_CORS_ALLOWED_ORIGINS).toEqual(["*"]);
  });

  it("refuses paths, host wildcards and * among origins, naming the variable", () => {
    for (const bad of [
      "https://app.example/path",
      "https://*.example",
      "*, https://app.example",
      "app.example",
    ]) {
      expect(() => load(bad), bad).toThrow(ConfigError);
      expect(() => load(bad), bad).toThrow(/EDGE_CORS_ALLOWED_ORIGINS/);
    }
  });
});
