import * as grpc from "@grpc/grpc-js";
import { queue } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type EdgeGateway, startEdgeGateway } from "../src/index.js";
import { type FakeUpstream, grpcError, startFakeUpstream } from "./support/fake-upstreams.js";

const LISTEN = "/phoenix.queue.v1.QueueService/Listen";
const LISTEN_OFFERS = "/phoenix.auth.v1.AuthService/ListenConnectionOffers";

let upstream: FakeUpstream;
let gateway: EdgeGateway;
/** What the fake QS saw on its Listen streams, per stream. */
let seen: { requests: queue.ListenRequest[]; cancelled: boolean }[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  gateway = await startEdgeGateway({
    upstreams: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
    limits: { heartbeatMs: 150 },
  });
  // A fake QS queue with three messages: sends them after `init`, then the drained marker;
  // an ack of everything ends the stream with OK; an ack of sequence number 99 fails it.
  upstream.bidi(LISTEN, (call) => {
    const record = { requests: [] as queue.ListenRequest[], cancelled: false };
    seen.push(record);
    call.on("cancelled", () => {
      record.cancelled = true;
    });
    call.on("data", (request: queue.ListenRequest) => {
      record.requests.push(request);
      if (request.request?.$case === "init") {
        for (let seq = 0n; seq < 3n; seq++) {
          call.write({
            event: {
              $case: "message",
              value: { sequenceNumber: seq, ciphertext: new Uint8Array([Number(seq)]) },
            },
          });
        }
        call.write({ event: { $case: "empty", value: {} } });
      } else if (request.request?.$case === "ack") {
        const upTo = request.request.value.upToSequenceNumber;
        if (upTo === 99n)
          call.emit("error", grpcError(grpc.status.INVALID_ARGUMENT, "ack beyond the queue: 99 > 3"));
        else if (upTo === 3n) call.end();
      }
    });
  });
});

afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});

interface Opened {
  ws: WebSocket;
  frames: (string | Uint8Array)[];
  closed: Promise<{ code: number; reason: string }>;
  next(): Promise<string | Uint8Array>;
}

function open(path: string, options: WebSocket.ClientOptions = {}): Promise<Opened> {
  const ws = new WebSocket(`${gateway.url.replace("http", "ws")}${path}`, options);
  const frames: (string | Uint8Array)[] = [];
  const waiters: ((frame: string | Uint8Array) => void)[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    const frame = isBinary ? new Uint8Array(data) : data.toString("utf8");
    const waiter = waiters.shift();
    if (waiter) waiter(frame);
    else frames.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
  );
  return new Promise((resolve, reject) => {
    ws.once("open", () =>
      resolve({
        ws,
        frames,
        closed,
        next: () => {
          const frame = frames.shift();
          return frame !== undefined ? Promise.resolve(frame) : new Promise((r) => waiters.push(r));
        },
      }),
    );
    ws.once("error", reject);
  });
}

describe("WebSocket listen", () => {
  it("JSON frames: init, messages, drained marker, ack forwarded, stream end closes 1000", async () => {
    seen = [];
    const client = await open("/v1/qs/ws/listen");
    const init = queue.ListenRequest.toJSON({
      request: { $case: "init", value: { tbs: new Uint8Array([1, 2]), signature: new Uint8Array([3]) } },
    });
    client.ws.send(JSON.stringify(init));
    const frames = [await client.next(), await client.next(), await client.next(), await client.next()];
    expect(frames.map((f) => JSON.parse(f as string))).toEqual([
      // proto3 JSON omits default values: sequence number 0 is absent.
      { message: { ciphertext: "AA==" } },
      { message: { sequenceNumber: "1", ciphertext: "AQ==" } },
      { message: { sequenceNumber: "2", ciphertext: "Ag==" } },
      { empty: {} },
    ]);
    client.ws.send(JSON.stringify({ ack: { upToSequenceNumber: "3" } }));
    expect(await client.closed).toEqual({ code: 1000, reason: "stream ended" });
    const requests = seen[0]?.requests ?? [];
    expect(requests[0]?.request?.$case).toBe("init");
    expect(requests[0]?.request?.value).toEqual({ tbs: Buffer.from([1, 2]), signature: Buffer.from([3]) });
    expect(requests[1]?.request).toEqual({ $case: "ack", value: { upToSequenceNumber: 3n } });
  });

  it("binary frames with ?encoding=proto", async () => {
    const client = await open("/v1/qs/ws/listen?encoding=proto");
    client.ws.send(
      queue.ListenRequest.encode({
        request: { $case: "init", value: { tbs: new Uint8Array([7]), signature: new Uint8Array() } },
      }).finish(),
    );
    const first = await client.next();
    expect(first).toBeInstanceOf(Uint8Array);
    const decoded = queue.ListenResponse.decode(first as Uint8Array);
    expect(decoded.event?.$case).toBe("message");
    expect(decoded.event?.value).toMatchObject({ sequenceNumber: 0n });
    const second = queue.ListenResponse.decode((await client.next()) as Uint8Array);
    expect(second.event?.$case === "message" && Array.from(second.event.value.ciphertext)).toEqual([1]);
    client.ws.close();
    await client.closed;
  });

  it("an upstream error closes with 4000 + the gRPC code and the status message", async () => {
    const client = await open("/v1/qs/ws/listen");
    client.ws.send(JSON.stringify({ init: { tbs: "AQ==", signature: "" } }));
    await client.next();
    client.ws.send(JSON.stringify({ ack: { upToSequenceNumber: "99" } }));
    expect(await client.closed).toEqual({
      code: 4000 + grpc.status.INVALID_ARGUMENT,
      reason: "ack beyond the queue: 99 > 3",
    });
  });

  it("a malformed frame closes with 4003 and cancels the upstream stream", async () => {
    seen = [];
    const client = await open("/v1/qs/ws/listen");
    client.ws.send(JSON.stringify({ init: { tbs: "AQ==" } }));
    await client.next();
    client.ws.send(JSON.stringify({ nack: 1 }));
    const closed = await client.closed;
    expect(closed.code).toBe(4003);
    expect(closed.reason).toMatch(/nack/);
    await eventually(() => seen[0]?.cancelled === true, { message: "the upstream stream to be cancelled" });
  });

  it("the client closing cancels the upstream stream", async () => {
    seen = [];
    const client = await open("/v1/qs/ws/listen");
    client.ws.send(JSON.stringify({ init: { tbs: "AQ==" } }));
    await client.next();
    client.ws.close(1000);
    await client.closed;
    await eventually(() => seen[0]?.cancelled === true, { message: "the upstream stream to be cancelled" });
  });

  it("heartbeats: a peer that answers pings stays connected", async () => {
    const client = await open("/v1/qs/ws/listen");
    let pings = 0;
    client.ws.on("ping", () => {
      pings += 1;
    });
    client.ws.send(JSON.stringify({ init: { tbs: "AQ==" } }));
    await eventually(() => pings >= 4, { message: "4 pings" });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    client.ws.close();
    await client.closed;
  });

  it("heartbeats: a peer that stops answering pings is dropped and its upstream cancelled", async () => {
    seen = [];
    const client = await open("/v1/qs/ws/listen", { autoPong: false });
    client.ws.send(JSON.stringify({ init: { tbs: "AQ==" } }));
    await client.next();
    const closed = await client.closed;
    expect(closed.code).not.toBe(1000);
    await eventually(() => seen[0]?.cancelled === true, { message: "the upstream stream to be cancelled" });
  });

  it("an upstream that does not implement the stream closes with 4012", async () => {
    const client = await open("/v1/as/ws/listen-connection-offers");
    client.ws.send(JSON.stringify({ init: { tbs: "AQ==" } }));
    const closed = await client.closed;
    expect(closed.code).toBe(4000 + grpc.status.UNIMPLEMENTED);
    expect(closed.reason).toContain(LISTEN_OFFERS);
  });

  it("unknown stream path: the upgrade is refused with 404", async () => {
    await expect(open("/v1/qs/ws/nothing")).rejects.toThrow(/404/);
  });

  it("lists a route for every streaming RPC", () => {
    expect(gateway.streamRoutes.map((r) => r.path).sort()).toEqual([
      "/v1/as/ws/listen-connection-offers",
      "/v1/as/ws/listen-handle-connection-offers",
      "/v1/qs/ws/listen",
    ]);
  });
});
