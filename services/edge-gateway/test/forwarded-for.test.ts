// The client address reaches the services as `x-forwarded-for` gRPC metadata (the AS rate-limits
// per caller with it), on unary calls and WebSocket streams; a client cannot choose it unless
// the gateway is told it sits behind a trusted proxy.
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type EdgeGateway, startEdgeGateway } from "../src/index.js";
import { type FakeUpstream, startFakeUpstream } from "./support/fake-upstreams.js";

const GET_CREDENTIALS = "/phoenix.auth.v1.AuthService/GetAsCredentials";
const LISTEN_OFFERS = "/phoenix.auth.v1.AuthService/ListenConnectionOffers";

let upstream: FakeUpstream;
let direct: EdgeGateway;
let proxied: EdgeGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const upstreams = { auth: upstream.address, delivery: upstream.address, queue: upstream.address };
  direct = await startEdgeGateway({ upstreams });
  proxied = await startEdgeGateway({
    upstreams,
    trustProxy: true,
    limits: { rateLimitPerSecond: 1, rateLimitBurst: 1 },
  });
  upstream.unary(GET_CREDENTIALS, async () => ({
    domain: "home.example",
    asCredentials: [],
    asIntermediateCredentials: [],
    revokedFingerprints: [],
  }));
  // Holds the stream open until the client goes away.
  upstream.bidi(LISTEN_OFFERS, (call) => {
    call.on("data", () => {});
    call.on("cancelled", () => call.end());
  });
});

afterAll(async () => {
  await direct?.close();
  await proxied?.close();
  await upstream?.close();
});

/** The `x-forwarded-for` values the fake upstream saw on the last call to `path`. */
function forwardedFor(path: string): string[] {
  const call = upstream.calls.filter((c) => c.path === path).at(-1);
  return (call?.metadata.get("x-forwarded-for") ?? []).map(String);
}

async function getCredentials(gateway: EdgeGateway, headers: Record<string, string> = {}) {
  return fetch(`${gateway.url}/v1/as/credentials`, { headers });
}

/** Opens a WebSocket stream and waits until the upstream has seen the call. */
async function openStream(gateway: EdgeGateway, headers: Record<string, string> = {}): Promise<WebSocket> {
  const before = upstream.calls.filter((c) => c.path === LISTEN_OFFERS).length;
  const ws = new WebSocket(`${gateway.url.replace("http", "ws")}/v1/as/ws/listen-connection-offers`, {
    headers,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  try {
    await eventually(() => upstream.calls.filter((c) => c.path === LISTEN_OFFERS).length > before, {
      intervalMs: 10,
      message: "the upstream to see the stream",
    });
  } catch (error) {
    ws.terminate();
    throw error;
  }
  return ws;
}

async function closeStream(ws: WebSocket): Promise<void> {
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  ws.close();
  await closed;
}

describe("x-forwarded-for on upstream calls", () => {
  it("names the TCP peer on unary calls and replaces a client-written header", async () => {
    expect((await getCredentials(direct)).status).toBe(200);
    expect(forwardedFor(GET_CREDENTIALS)).toEqual(["127.0.0.1"]);
    const spoofed = await getCredentials(direct, { "X-Forwarded-For": "203.0.113.9" });
    expect(spoofed.status).toBe(200);
    expect(forwardedFor(GET_CREDENTIALS)).toEqual(["127.0.0.1"]);
  });

  it("names the TCP peer on WebSocket streams and replaces a client-written header", async () => {
    const ws = await openStream(direct, { "X-Forwarded-For": "203.0.113.9" });
    expect(forwardedFor(LISTEN_OFFERS)).toEqual(["127.0.0.1"]);
    await closeStream(ws);
  });

  it("behind a trusted proxy, appends the peer to the incoming chain on unary calls and streams", async () => {
    const rest = await getCredentials(proxied, { "X-Forwarded-For": "203.0.113.9, 198.51.100.4" });
    expect(rest.status).toBe(200);
    expect(forwardedFor(GET_CREDENTIALS)).toEqual(["203.0.113.9, 198.51.100.4, 127.0.0.1"]);

    const ws = await openStream(proxied, { "X-Forwarded-For": "198.51.100.5" });
    expect(forwardedFor(LISTEN_OFFERS)).toEqual(["198.51.100.5, 127.0.0.1"]);
    await closeStream(ws);
  });

  it("behind a trusted proxy, rate-limits by the hop the proxy wrote, not one the client wrote", async () => {
    // Burst 1: the second request from the same proxy-seen address is refused, whatever the
    // client put further left.
    const first = await getCredentials(proxied, { "X-Forwarded-For": "192.0.2.1, 198.51.100.77" });
    expect(first.status).toBe(200);
    const second = await getCredentials(proxied, { "X-Forwarded-For": "192.0.2.2, 198.51.100.77" });
    expect(second.status).toBe(429);
    const other = await getCredentials(proxied, { "X-Forwarded-For": "192.0.2.1, 198.51.100.78" });
    expect(other.status).toBe(200);
  });
});
