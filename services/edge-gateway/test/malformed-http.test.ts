// Requests Node's HTTP parser refuses before any route runs (a request line or headers beyond
// the header limit, bytes that are not HTTP) still get the gateway's error shape: an HTTP status
// and a google.rpc.Status JSON body naming the problem. Found by the RPC fuzzer.
import { connect } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type EdgeGateway, startEdgeGateway } from "../src/index.js";
import { type FakeUpstream, startFakeUpstream } from "./support/fake-upstreams.js";

let upstream: FakeUpstream;
let gateway: EdgeGateway;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = await startEdgeGateway({
    upstreams: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
  });
});

afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

/** Sends `raw` on a fresh connection and returns everything the gateway answers. */
function rawExchange(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(gateway.port, "127.0.0.1", () => socket.end(raw));
    let answer = "";
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
    });
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
  });
}

function statusBody(answer: string): { code: number; message: string } {
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  expect(head.toLowerCase()).toContain("content-type: application/json");
  return JSON.parse(body) as { code: number; message: string };
}

it("answers a URL beyond the header limit with 431 and a google.rpc.Status body", async () => {
  const response = await fetch(`${gateway.url}/v1/as/credentials?x=${"A".repeat(60_000)}`);
  expect(response.status).toBe(431);
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = (await response.json()) as { code: number; message: string };
  expect(body.code).toBe(8); // RESOURCE_EXHAUSTED
  expect(body.message).toMatch(/header/i);
});

it("answers bytes that are not HTTP with 400 and a google.rpc.Status body", async () => {
  const answer = await rawExchange("\u0001\u0002 not http at all\r\n\r\n");
  expect(answer.startsWith("HTTP/1.1 400")).toBe(true);
  const body = statusBody(answer);
  expect(body.code).toBe(3); // INVALID_ARGUMENT
  expect(body.message).toMatch(/malformed HTTP request/);
});
